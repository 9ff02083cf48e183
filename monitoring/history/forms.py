from __future__ import annotations

from django import forms

from workflows.services.history import RETENTION_MAX_DAYS


class RetentionForm(forms.Form):
    KEEP_FOREVER = "forever"
    KEEP_DAYS = "days"

    mode = forms.ChoiceField(
        choices=[(KEEP_FOREVER, "Keep every run"), (KEEP_DAYS, "Delete runs older than")],
        widget=forms.RadioSelect,
    )
    days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=RETENTION_MAX_DAYS,
        label="Days",
        error_messages={
            "min_value": "Keep runs at least 1 day.",
            "max_value": f"Keep runs at most {RETENTION_MAX_DAYS} days, or keep every run.",
        },
    )

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("mode") == self.KEEP_DAYS and not cleaned.get("days"):
            self.add_error("days", "Say how many days to keep runs.")
        return cleaned

    def keep_days(self) -> int | None:
        if self.cleaned_data["mode"] == self.KEEP_FOREVER:
            return None
        return int(self.cleaned_data["days"])
