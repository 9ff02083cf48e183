"""The run form, generated from a workflow version's input schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django import forms

from a2a_site.forms import JsonInputField
from workflows.graph import InputSchema


def run_form_class(schema: InputSchema) -> type[forms.Form]:
    """A Django form with one field per input; the schema itself has the last word on values."""
    fields: dict[str, forms.Field] = {}
    for item in schema.fields:
        common: dict[str, Any] = {
            "label": item.label or item.name.replace("_", " ").capitalize(),
            "help_text": item.help,
            "required": item.required and item.type != "boolean",
            "initial": item.default,
        }
        if item.type == "text":
            field: forms.Field = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), **common)
        elif item.type == "number":
            field = forms.FloatField(**common)
        elif item.type == "integer":
            field = forms.IntegerField(**common)
        elif item.type == "boolean":
            field = forms.BooleanField(**common)
        elif item.type == "choice":
            field = forms.ChoiceField(choices=[(c, c) for c in item.choices], **common)
        elif item.type == "json":
            field = JsonInputField(
                widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}), **common
            )
        else:
            field = forms.CharField(**common)
        fields[item.name] = field
    form_class = type("RunForm", (forms.Form,), fields)
    form_class.input_names = frozenset(fields)  # type: ignore[attr-defined]
    return form_class


PRIORITY_FIELD = "run_priority"
PRIORITY_CHOICES = [("low", "Low"), ("normal", "Normal"), ("high", "High")]


def run_form_with_priority(form_class: type[forms.Form], default: str) -> type[forms.Form]:
    """The run form with the run's priority (unless an input already has the field's name)."""
    if PRIORITY_FIELD in form_class.base_fields:
        return form_class
    field = forms.ChoiceField(
        label="Priority",
        choices=PRIORITY_CHOICES,
        initial=default,
        required=False,  # not sent (the API, an old page): the workflow's default
        help_text="Higher-priority runs are picked up first and served first by a model that "
        "is at its rate limit.",
    )
    return type("RunForm", (form_class,), {PRIORITY_FIELD: field})


def run_inputs(form: forms.Form) -> dict[str, Any]:
    return {
        name: value
        for name, value in form.cleaned_data.items()
        if value not in (None, "") and not (name == PRIORITY_FIELD and name not in _inputs(form))
    }


def run_priority(form: forms.Form) -> str | None:
    """The priority chosen in the run form, if it has the field."""
    if PRIORITY_FIELD in _inputs(form):
        return None
    value = form.cleaned_data.get(PRIORITY_FIELD)
    return str(value) if value else None


def _inputs(form: forms.Form) -> set[str]:
    return set(getattr(form, "input_names", ()))


def inputs_json(inputs: dict[str, Any]) -> str:
    return json.dumps(inputs, indent=2, ensure_ascii=False)


class WorkflowCreateForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="Unique in this workspace.")
    description = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: what it is for, in a sentence.",
    )


# --- The builder's editor of a workflow's inputs and variables -----------------------------------

INPUT_TYPE_CHOICES = [
    ("string", "Short text"),
    ("text", "Long text"),
    ("choice", "One of a list (enum)"),
    ("number", "Number"),
    ("integer", "Whole number"),
    ("boolean", "Yes / no"),
    ("json", "JSON"),
]
VARIABLE_TYPE_CHOICES = [
    (kind, kind) for kind in ("string", "number", "integer", "boolean", "object", "array")
]
REDUCER_CHOICES = [
    ("replace", "replace: the last write wins"),
    ("append", "append: collect writes in a list"),
    ("merge", "merge: combine objects"),
]


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class InputRowForm(forms.Form):
    """One run input. Rows left blank are ignored; `original` tracks renames."""

    original = forms.CharField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(required=False, max_length=64)
    label = forms.CharField(required=False, max_length=120)
    type = forms.ChoiceField(choices=INPUT_TYPE_CHOICES, initial="string")
    help = forms.CharField(required=False, max_length=2000, label="Description")
    required = forms.BooleanField(required=False, initial=True)
    default = forms.CharField(required=False, max_length=20_000)
    choices = forms.CharField(
        required=False,
        max_length=20_000,
        label="Choices",
        help_text="For “One of a list”: the allowed values, separated by commas.",
    )

    @staticmethod
    def initial_of(field: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "original": field.get("name", ""),
            "name": field.get("name", ""),
            "label": field.get("label", ""),
            "type": field.get("type", "string"),
            "help": field.get("help", ""),
            "required": field.get("required", True),
            "default": _shown(field.get("default")),
            "choices": ", ".join(str(choice) for choice in field.get("choices") or []),
        }

    def is_blank(self) -> bool:
        """The spare row left empty; a row with anything typed in it is checked, name or not."""
        data = getattr(self, "cleaned_data", {})
        typed = ("original", "name", "label", "help", "default", "choices")
        return not any(str(data.get(key) or "").strip() for key in typed)

    def row(self) -> dict[str, Any]:
        data = self.cleaned_data
        choices = [part.strip() for part in data["choices"].split(",") if part.strip()]
        return {
            "name": data["name"].strip(),
            "type": data["type"],
            "label": data["label"].strip(),
            "help": data["help"].strip(),
            "required": data["required"],
            "default": data["default"] if data["default"].strip() else None,
            "choices": choices,
        }


class VariableRowForm(forms.Form):
    """One variable the nodes read and write. The initial value is JSON (plain text for strings)."""

    name = forms.CharField(required=False, max_length=64)
    type = forms.ChoiceField(choices=VARIABLE_TYPE_CHOICES, initial="string")
    reducer = forms.ChoiceField(choices=REDUCER_CHOICES, initial="replace")
    default = forms.CharField(required=False, max_length=20_000, label="Initial value")
    description = forms.CharField(required=False, max_length=2000)

    @staticmethod
    def initial_of(variable: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": variable.get("name", ""),
            "type": variable.get("type", "string"),
            "reducer": variable.get("reducer", "replace"),
            "default": _shown(variable.get("default")),
            "description": variable.get("description", ""),
        }

    def is_blank(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return not any(
            str(data.get(key) or "").strip() for key in ("name", "default", "description")
        )

    def row(self) -> dict[str, Any]:
        data = self.cleaned_data
        raw = data["default"]
        default: Any = None
        if raw.strip() and data["type"] == "string":
            default = raw
        elif raw.strip():
            try:
                default = json.loads(raw)
            except ValueError:
                # A bare word is what people type for a string; anything else must be JSON.
                default = raw
        return {
            "name": data["name"].strip(),
            "type": data["type"],
            "reducer": data["reducer"],
            "default": default,
            "description": data["description"].strip(),
        }


InputRowFormSet = forms.formset_factory(InputRowForm, extra=1, can_delete=True, max_num=100)
VariableRowFormSet = forms.formset_factory(VariableRowForm, extra=1, can_delete=True, max_num=200)


# --- Forking a run from one of its steps ----------------------------------------------------------


def _same_value(submitted: Any, original: Any) -> bool:
    """Whether a submitted value is the one shown: browsers send text areas' line ends as CRLF."""
    if isinstance(submitted, str) and isinstance(original, str):
        return submitted.replace("\r\n", "\n") == original.replace("\r\n", "\n")
    if submitted in (None, "") and original in (None, ""):
        return True
    return bool(submitted == original)


_JSON_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "number": ((int, float), "a number"),
    "integer": ((int,), "a whole number"),
    "boolean": ((bool,), "true or false"),
    "object": ((dict,), 'a JSON object, such as {"key": "value"}'),
    "array": ((list,), 'a JSON list, such as ["a", "b"]'),
}


class VariableValueField(JsonInputField):
    """A variable's value as JSON, checked against the variable's type (empty: not set)."""

    def __init__(self, *, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind

    def validate(self, value: Any) -> None:
        super().validate(value)
        expected = _JSON_KINDS.get(self.kind)
        if value is None or expected is None:
            return
        types, wanted = expected
        is_bool = isinstance(value, bool)
        if not isinstance(value, types) or (is_bool and self.kind != "boolean"):
            raise forms.ValidationError(f"This variable holds {wanted}.", code="invalid")


def fork_variables_form_class(variables: list[Any], values: Mapping[str, Any]) -> type[forms.Form]:
    """One field per variable of the graph, holding its value at the fork point: plain text for
    strings, JSON for the rest."""
    fields: dict[str, forms.Field] = {}
    for variable in variables:
        common: dict[str, Any] = {
            "label": variable.name,
            "help_text": variable.description,
            "required": False,
        }
        value = values.get(variable.name)
        attrs = {"rows": 3, "placeholder": "Not set yet at this step"}
        if variable.type == "string" and (value is None or isinstance(value, str)):
            fields[variable.name] = forms.CharField(
                widget=forms.Textarea(attrs=attrs), strip=False, **common
            )
        else:
            fields[variable.name] = VariableValueField(
                kind=variable.type,
                widget=forms.Textarea(attrs={**attrs, "class": "mono"}),
                **common,
            )
    return type("ForkVariablesForm", (forms.Form,), fields)


def fork_variables_edited(form: forms.Form, values: Mapping[str, Any]) -> dict[str, Any]:
    """The variables whose submitted value differs from the one the walk had there (a field
    left out of the submission is not an edit)."""
    edited = {}
    for name, submitted in form.cleaned_data.items():
        if form.add_prefix(name) not in form.data:
            continue
        original = values.get(name)
        if not _same_value(submitted, original):
            edited[name] = (
                submitted.replace("\r\n", "\n") if isinstance(submitted, str) else submitted
            )
    return edited


class ForkVersionForm(forms.Form):
    version = forms.ChoiceField(widget=forms.RadioSelect, label="Run on")

    def __init__(self, *args: Any, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["version"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices
        field.initial = choices[0][0]


class RunSettingsForm(forms.Form):
    """A workflow's run settings (`settings` in its graph): priority, limits and budgets."""

    priority = forms.ChoiceField(
        choices=[("low", "Low"), ("normal", "Normal"), ("high", "High")],
        initial="normal",
        help_text="Workers take higher-priority runs first; a launch may choose otherwise.",
    )
    max_steps = forms.IntegerField(
        label="Most steps per run",
        min_value=1,
        max_value=100_000,
        initial=200,
        help_text="A run that would take more steps fails, saying so.",
    )
    timeout_s = forms.IntegerField(
        label="Time limit (seconds)",
        min_value=1,
        max_value=7 * 24 * 3600,
        initial=3600,
        help_text="Checked during model calls too: a call is cut at the limit.",
    )
    token_budget = forms.IntegerField(
        label="Token budget per run",
        min_value=1,
        required=False,
        help_text="Blank: no token budget.",
    )
    cost_budget_usd = forms.DecimalField(
        label="Cost budget per run (USD)",
        min_value=0,
        max_digits=12,
        decimal_places=6,
        required=False,
        help_text="Blank: no cost budget. A call whose price is unknown is refused under one.",
    )
    budget_action = forms.ChoiceField(
        label="When a budget is reached",
        choices=[("stop", "Stop the run"), ("pause", "Ask a person to go on")],
        initial="stop",
    )

    @classmethod
    def initial_of(cls, settings: Any) -> dict[str, Any]:
        settings = settings if isinstance(settings, dict) else {}
        return {name: settings.get(name, field.initial) for name, field in cls.base_fields.items()}

    def settings(self) -> dict[str, Any]:
        """The graph's `settings` object these fields describe (cleaned first)."""
        data = dict(self.cleaned_data)
        cost = data.get("cost_budget_usd")
        data["cost_budget_usd"] = float(cost) if cost is not None else None
        return data
