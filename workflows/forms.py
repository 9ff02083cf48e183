"""The run form, generated from a workflow version's input schema."""

from __future__ import annotations

import json
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
    return type("RunForm", (forms.Form,), fields)


def run_inputs(form: forms.Form) -> dict[str, Any]:
    return {name: value for name, value in form.cleaned_data.items() if value not in (None, "")}


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
