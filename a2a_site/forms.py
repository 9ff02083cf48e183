"""Form helpers shared by the apps' views."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms import BaseForm

from a2a_site.json_input import JsonInputError, json_parse


def form_add_errors(form: BaseForm, error: ValidationError) -> None:
    """Shows a service's ValidationError on the form: by field where it names one, else on top."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


class JsonInputField(forms.JSONField):
    """Django's JSONField, parsed by `json_parse`: nesting too deep for Python's parser, NaN or
    a number too large is an invalid value, not a 500."""

    def to_python(self, value: Any) -> Any:
        if self.disabled or not isinstance(value, str):
            return super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return json_parse(value, what="This")
        except JsonInputError as error:
            raise ValidationError(str(error), code="invalid") from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        if self.disabled or not isinstance(data, str):
            return super().bound_data(data, initial)
        try:
            return json_parse(data)
        except JsonInputError:
            return forms.fields.InvalidJSONInput(data)
