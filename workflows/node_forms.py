"""The builder's node property forms, derived from each node type's pydantic config model.

The registry stays the one description of a node type: a field's form widget follows from its
annotation (a Literal is a choice, an int a number with its bounds, a long str a textarea), with a
few names that mean something to a person (agent ids become agent pickers, `tool` a tool picker).
Anything without a natural widget (rules, termination conditions, mappings) is edited as JSON.
Pydantic has the last word: `NodeForm.config()` runs the config model and puts its errors on the
fields they belong to, so a new node type gets a working form without code here.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, MaxLen
from django import forms
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from a2a_site.json_input import JsonInputError, json_parse
from workflows.graph.nodes import PERSON_PREFIX, ErrorPolicy, NodeType, is_person
from workflows.graph.schema import MAX_LABEL, error_message

AGENT_ONE = {"agent_id", "selector_agent_id", "chair_agent_id", "start_agent", "proposer_agent_id"}
AGENT_MANY = {"members", "agents", "voters"}
LINES = {"routes", "options", "context_variables"}

LABELS: dict[str, str] = {
    "agent_id": "Agent",
    "selector_agent_id": "Selector agent",
    "chair_agent_id": "Chair (breaks ties)",
    "start_agent": "Starts with",
    "members": "Members",
    "agents": "Agents",
    "voters": "Voters",
    "input_template": "Input",
    "output_variable": "Save the result in variable",
    "input_mapping": "Input mapping",
    "output_mapping": "Output mapping",
    "max_iterations": "Max iterations",
    "max_handoffs": "Max hand-offs",
    "max_depth": "Max nesting depth",
    "routes": "Routes",
    "default_route": "Default route",
    "speaker_selection": "Who speaks next",
    "speaker_rules": "Speaker rules",
    "allow_repeated_speaker": "The same member may speak twice in a row",
    "selector_prompt": "Selector prompt",
    "max_selector_attempts": "Selector attempts",
    "task_counts_as_message": "The task counts as the first message",
    "free_form": "Free-form answers",
    "k": "k (for k of n)",
    "tie_policy": "On a tie",
    "timeout_s": "Timeout (seconds)",
    "on_timeout": "On timeout",
    "default_value": "Default value",
    "workflow_id": "Workflow",
    "context_variables": "Context variables",
    "result": "Hands on",
    "proposer_agent_id": "Proposer",
    "max_terms": "Max terms",
    "proposer_timeout_s": "Proposer timeout (seconds)",
    "election": "If the proposer fails, elect",
    "on_no_consensus": "Without agreement",
    "url": "Agent URL",
    "remote_agent_id": "Saved remote agent (token)",
    "skill_id": "Skill",
    "on_input_required": "When it asks for input",
    "fixed_answer": "Fixed answer",
    "max_input_rounds": "Questions it may ask",
}

HELP: dict[str, str] = {
    "instructions": "Added to the agent's own instructions for this step.",
    "input_template": "What the agent receives. {{ input }} is the previous step's result; "
    "{{ name }} is a variable or a run input.",
    "question": "Sent to every voter. Placeholders as in templates: {{ input }}, {{ topic }}.",
    "prompt": "Shown to the person. Placeholders as in templates: {{ last }}, {{ draft }}.",
    "output_variable": "Optional: later steps read it as {{ name }}.",
    "result": "The chat's last message, or the whole conversation, each message with its speaker.",
    "output": "A variable name, or a template such as {{ summary }}.",
    "routes": "One route per line; each becomes an output handle on the node.",
    "options": "One option per line.",
    "context_variables": "One variable name per line; hand-offs carry them along.",
    "rules": 'JSON list, e.g. [{"route": "yes", "operator": "contains", "value": "yes"}]. '
    "Operators: contains, regex, equals, json_field_equals, json_field_gt, json_field_lt.",
    "condition": 'JSON, e.g. {"kind": "text_mention", "value": "TERMINATE"} or '
    '{"kind": "variable_predicate", "variable": "score", "operator": "gte", "value": 8}.',
    "termination": 'JSON, e.g. {"any_of": [{"text_mention": "TERMINATE"}, {"max_messages": 12}]}.'
    " It must include max_messages, token_budget, cost_budget_usd or timeout_s.",
    "speaker_rules": 'JSON list, e.g. [{"after_speaker": "<agent id>", "next_speaker": '
    '"<agent id>", "when_contains": "DONE"}].',
    "input_mapping": "JSON object.",
    "output_mapping": 'JSON object: the child\'s output field → a variable here; "*" takes '
    "the whole output (a text too).",
    "arguments": "JSON object; values may hold {{ placeholders }}.",
    "field": 'JSON, e.g. {"name": "answer", "type": "text", "label": "Your answer"}.',
    "version": "latest_published, or a version number.",
    "members": "Speaking order follows the order you tick them.",
    "selector_prompt": "Optional. Sent to the selector agent each turn; {roles}, {participants} "
    "and {history} are filled in. Empty: the selector reads the chat so far.",
    "max_selector_attempts": "Asks the selector again when its answer names no single member.",
    "task_counts_as_message": "As in AutoGen: Max messages includes the task, and a stop text in "
    "the task ends the chat at once.",
}

# Where one field name means something else in one node type.
HELP_BY_TYPE: dict[tuple[str, str], str] = {
    ("consensus", "members"): "They accept or reject each proposal; the proposer is not one.",
    ("consensus", "task"): "What to agree on, sent to the proposer and shown to the members. "
    "Placeholders as in templates: {{ input }}, {{ topic }}.",
    ("consensus", "quorum"): "Acceptances a proposal needs, counted over all members.",
    ("consensus", "max_terms"): "A term is one proposal and its ballot; a rejected proposal is "
    "revised with the objections in the next term.",
    ("consensus", "proposer_timeout_s"): "Optional: a proposal not written in time counts as the "
    "proposer failing.",
    ("consensus", "election"): "Most acceptances: the member who accepted most proposals so far. "
    "Vote: the members elect one.",
    ("consensus", "on_no_consensus"): "fail: the node fails (its error policy decides). "
    "last proposal: hand it on, marked not agreed in the decision log.",
}

HELP_BY_TYPE.update(
    {
        ("remote_agent", "url"): "The A2A agent's base URL; its card is read from "
        "/.well-known/agent-card.json under it.",
        ("remote_agent", "remote_agent_id"): "Its token is sent as a bearer token, only to the "
        "origin it was saved with. Manage them on the Remote agents page.",
        ("remote_agent", "skill_id"): "Which of the card's skills this step asks for; the "
        "agent receives it with the message.",
        ("remote_agent", "input_template"): "What the remote agent receives. {{ input }} is the "
        "previous step's result.",
        ("remote_agent", "on_input_required"): "ask person: the run waits for an answer. fixed "
        "answer: the text below answers. next node: its 'input_required' branch gets the "
        "question, and what comes back to this step answers it.",
        ("remote_agent", "timeout_s"): "Optional: seconds one call may take; the run's own "
        "time limit applies too.",
    }
)

JSON_PLACEHOLDER = "JSON; leave empty for none"


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without None and Annotated, whether None is allowed)."""
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        optional = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation, optional


def _bound(info: FieldInfo, kind: type) -> Any:
    for item in info.metadata:
        if kind is Ge and isinstance(item, Ge):
            return item.ge
        if kind is Le and isinstance(item, Le):
            return item.le
        if kind is Gt and isinstance(item, Gt):
            return item.gt
        if kind is MaxLen and isinstance(item, MaxLen):
            return item.max_length
    return None


def _unknown_label(value: str) -> str:
    # A person member of a group chat (an imported AutoGen UserProxyAgent) is no agent.
    if is_person(value):
        return f"Person: {value[len(PERSON_PREFIX) :]}"
    return f"Missing: {value}"


class JSONField(forms.CharField):
    """Text holding JSON; empty means None."""

    widget = forms.Textarea

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "class": "mono"}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text or not str(text).strip():
            return None
        try:
            return json_parse(text, what="This")
        except JsonInputError as error:
            raise forms.ValidationError(str(error)) from None


class LinesField(forms.CharField):
    """One value per line."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(str(item) for item in value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [line.strip() for line in str(text).splitlines() if line.strip()]


class VersionField(forms.CharField):
    def to_python(self, value: Any) -> Any:
        text = (super().to_python(value) or "").strip()
        if not text or text == "latest_published":
            return "latest_published"
        if text.isdigit():
            return int(text)
        raise forms.ValidationError("Write latest_published or a version number.")


class NodeForm(forms.Form):
    """The fields every node has; `node_form_class` adds the ones of its type."""

    node_type: NodeType
    config_fields: tuple[str, ...] = ()

    label = forms.CharField(max_length=MAX_LABEL, required=False)
    error_action = forms.ChoiceField(
        label="If this step fails",
        choices=[
            ("fail", "Fail the run"),
            ("retry", "Retry"),
            ("error_branch", "Take the error branch"),
            ("default", "Continue with a default value"),
        ],
        initial="fail",
    )
    error_retries = forms.IntegerField(label="Retries", min_value=0, max_value=5, initial=0)
    error_backoff_s = forms.FloatField(
        label="Backoff (seconds)", min_value=0, max_value=300, initial=1.0
    )
    error_default = JSONField(label="Default value", required=False, help_text=JSON_PLACEHOLDER)

    def __init__(self, *args: Any, node: Mapping[str, Any], **kwargs: Any) -> None:
        self.node = dict(node)
        config = self.node.get("config") if isinstance(self.node.get("config"), dict) else {}
        self.previous_config: dict[str, Any] = dict(config or {})
        if not args or args[0] is None:
            kwargs.setdefault("initial", self.initial_for(self.previous_config))
        super().__init__(*args, **kwargs)

    def initial_for(self, config: Mapping[str, Any]) -> dict[str, Any]:
        policy = config.get("error_policy") if isinstance(config.get("error_policy"), dict) else {}
        initial: dict[str, Any] = {
            "label": self.node.get("label") or "",
            "error_action": (policy or {}).get("action", "fail"),
            "error_retries": (policy or {}).get("retries", 0),
            "error_backoff_s": (policy or {}).get("backoff_s", 1.0),
            "error_default": (policy or {}).get("default_value"),
        }
        model_fields = self.node_type.config_model.model_fields
        for name in self.config_fields:
            if name in config:
                initial[name] = config[name]
            else:
                default = model_fields[name].get_default(call_default_factory=True)
                initial[name] = None if default is ... else default
        return initial

    def _config_from_cleaned(self) -> dict[str, Any]:
        data = self.cleaned_data
        model_fields = self.node_type.config_model.model_fields
        config: dict[str, Any] = {}
        for name in self.config_fields:
            value = data.get(name)
            if name in AGENT_MANY and isinstance(value, list):
                previous = self.previous_config.get(name) or []
                kept = [item for item in previous if item in value]
                value = kept + [item for item in value if item not in kept]
            if value in ("", None) and not model_fields[name].is_required():
                continue
            default = model_fields[name].get_default(call_default_factory=True)
            if value == default and not model_fields[name].is_required():
                continue
            config[name] = value
        policy = {
            "action": data.get("error_action") or "fail",
            "retries": data.get("error_retries") or 0,
            "backoff_s": data.get("error_backoff_s")
            if data.get("error_backoff_s") is not None
            else 1.0,
            "default_value": data.get("error_default"),
        }
        if policy != ErrorPolicy().model_dump():
            config["error_policy"] = policy
        return config

    def config(self) -> dict[str, Any] | None:
        """The node's new config, or None with the config model's errors put on the fields."""
        if not self.is_valid():
            return None
        config = self._config_from_cleaned()
        try:
            self.node_type.config_model.model_validate(config)
        except ValidationError as error:
            for item in error.errors():
                location = [part for part in item["loc"] if isinstance(part, str | int)]
                field = self._field_for(location)
                message = error_message(item)
                if field is not None and len(location) > 1 and field not in self.config_json():
                    message = f"{message} ({'.'.join(str(part) for part in location[1:])})"
                self.add_error(field, message)
            return None
        return config

    def config_json(self) -> set[str]:
        return {name for name in self.config_fields if isinstance(self.fields[name], JSONField)}

    def _field_for(self, location: list[Any]) -> str | None:
        if not location:
            return None
        head = location[0]
        if head == "error_policy":
            part = location[1] if len(location) > 1 else "action"
            return {
                "action": "error_action",
                "retries": "error_retries",
                "backoff_s": "error_backoff_s",
                "default_value": "error_default",
            }.get(str(part), "error_action")
        return head if head in self.fields else None

    def node_update(self, config: dict[str, Any]) -> dict[str, Any]:
        """What the builder applies to its node: the same id, the new label and config.

        An agent step still labelled generically (or after its previous agent) takes the name of
        the agent chosen for it; a label someone wrote stays.
        """
        label = self.cleaned_data.get("label") or ""
        if "agent_id" in self.fields and config.get("agent_id"):
            names = dict(getattr(self.fields["agent_id"], "choices", []))
            previous = names.get(self.previous_config.get("agent_id") or "")
            if label in ("", self.node_type.label, previous):
                label = names.get(config["agent_id"], label)
        return {"id": self.node.get("id"), "label": label, "config": config}


def _choices_with_unknown(
    choices: list[tuple[str, str]], current: Iterable[Any]
) -> list[tuple[str, str]]:
    # An id the workspace no longer has must stay visible, or saving would silently drop it.
    known = {value for value, _ in choices}
    extra = [
        (str(value), _unknown_label(value))
        for value in current
        if isinstance(value, str) and value and value not in known
    ]
    return [*choices, *extra]


def _field_for(
    name: str,
    info: FieldInfo,
    *,
    agents: list[tuple[str, str]],
    tools: list[tuple[str, str]],
    workflows: list[tuple[str, str]],
    current: Any,
    node_type: str = "",
    remote_agents: list[tuple[str, str]] | None = None,
    skills: list[tuple[str, str]] | None = None,
) -> forms.Field:
    annotation, optional = _unwrap(info.annotation)
    required = info.is_required() and not optional
    common: dict[str, Any] = {
        "label": LABELS.get(name, name.replace("_", " ").capitalize()),
        "help_text": HELP_BY_TYPE.get((node_type, name), HELP.get(name, "")),
        "required": required,
    }
    values = current if isinstance(current, list) else [current]
    if name in AGENT_ONE:
        empty = [("", "Choose an agent…")]
        return forms.ChoiceField(choices=empty + _choices_with_unknown(agents, values), **common)
    if name in AGENT_MANY:
        return forms.MultipleChoiceField(
            choices=_choices_with_unknown(agents, values),
            widget=forms.CheckboxSelectMultiple,
            **common,
        )
    if name == "tool":
        empty = [("", "Choose a tool…")]
        return forms.ChoiceField(choices=empty + _choices_with_unknown(tools, values), **common)
    if name == "workflow_id":
        empty = [("", "Choose a workflow…")]
        return forms.ChoiceField(choices=empty + _choices_with_unknown(workflows, values), **common)
    if name == "version":
        return VersionField(**{**common, "required": False})
    if name == "remote_agent_id":
        empty = [("", "None — call without a token")]
        choices = _choices_with_unknown(remote_agents or [], values)
        return forms.ChoiceField(choices=empty + choices, **{**common, "required": False})
    if name == "skill_id":
        empty = [("", "Any — the agent decides")]
        choices = _choices_with_unknown(skills or [], values)
        # Its choices follow the card of the URL being typed (see builder_page.js).
        refreshed = forms.Select(attrs={"data-refresh": ""})
        return forms.ChoiceField(
            choices=empty + choices, widget=refreshed, **{**common, "required": False}
        )
    if name in LINES:
        return LinesField(**common)
    if get_origin(annotation) is Literal:
        choices = [(str(value), str(value).replace("_", " ")) for value in get_args(annotation)]
        if not required:
            choices = [("", "—"), *choices]
        return forms.ChoiceField(choices=choices, **common)
    if annotation is bool:
        return forms.BooleanField(**{**common, "required": False})
    if annotation is int:
        return forms.IntegerField(min_value=_bound(info, Ge), max_value=_bound(info, Le), **common)
    if annotation is float:
        return forms.FloatField(min_value=_bound(info, Ge), max_value=_bound(info, Le), **common)
    if annotation is str:
        max_length = _bound(info, MaxLen)
        long_text = max_length is None or max_length > 500
        widget = forms.Textarea(attrs={"rows": 3}) if long_text else forms.TextInput()
        return forms.CharField(
            max_length=max_length, widget=widget, strip=False, **{**common, "required": required}
        )
    return JSONField(**{**common, "help_text": common["help_text"] or JSON_PLACEHOLDER})


def node_form_class(
    node_type: NodeType,
    *,
    agents: list[tuple[str, str]],
    tools: list[tuple[str, str]],
    workflows: list[tuple[str, str]],
    node: Mapping[str, Any],
    remote_agents: list[tuple[str, str]] | None = None,
    skills: list[tuple[str, str]] | None = None,
) -> type[NodeForm]:
    """A form class for one node of `node_type`; choices list what the workspace has."""
    config = node.get("config") if isinstance(node.get("config"), dict) else {}
    fields: dict[str, Any] = {}
    names = []
    for name, info in node_type.config_model.model_fields.items():
        if name == "error_policy":
            continue
        names.append(name)
        fields[name] = _field_for(
            name,
            info,
            agents=agents,
            tools=tools,
            workflows=workflows,
            current=(config or {}).get(name),
            node_type=node_type.type,
            remote_agents=remote_agents,
            skills=skills,
        )
    attributes: dict[str, Any] = {
        **fields,
        "node_type": node_type,
        "config_fields": tuple(names),
    }
    form_class = type(f"{node_type.type.title().replace('_', '')}NodeForm", (NodeForm,), attributes)
    # Type-specific fields first, then the error policy every node shares.
    order = ["label", *names, "error_action", "error_retries", "error_backoff_s", "error_default"]
    form_class.field_order = order  # type: ignore[attr-defined]
    return form_class
