"""Forms of the alerts pages: each field says what is wrong with what was entered."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from agents.urlpolicy import OutboundHostUnresolved, OutboundURLRefused
from monitoring.alerts.models import ChannelKind, RuleKind
from workflows.webhooks.signing import webhook_url_check

MAX_WINDOW_MINUTES = 7 * 24 * 60
MAX_RECIPIENTS = 20


class AlertRuleForm(forms.Form):
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(
        label="Measure",
        choices=RuleKind.choices,
    )
    threshold = forms.DecimalField(
        max_digits=16,
        decimal_places=4,
        min_value=Decimal(0),
        help_text="In the measure's unit: percent, seconds, dollars, times the usual spend, "
        "megabytes, nodes or minutes.",
    )
    window_minutes = forms.IntegerField(
        label="Window (minutes)",
        min_value=1,
        max_value=MAX_WINDOW_MINUTES,
        initial=15,
        help_text="The measure is read over this many minutes up to now (a week at most). "
        "Not used by budgets, Ollama nodes and waiting runs.",
    )
    min_calls = forms.IntegerField(
        label="Fewest calls",
        min_value=1,
        max_value=100_000,
        initial=5,
        help_text="Error rate and latency: with fewer calls in the window, nothing changes.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, threshold = data.get("kind"), data.get("threshold")
        if kind is None or threshold is None:
            return data
        if kind in (RuleKind.ERROR_RATE, RuleKind.BUDGET) and threshold > 100:
            self.add_error("threshold", "A percentage goes up to 100.")
        if kind == RuleKind.BUDGET and threshold <= 0:
            self.add_error("threshold", "Fire at a share of the limit above 0 %.")
        if kind == RuleKind.SPEND_SPIKE and threshold <= 1:
            self.add_error(
                "threshold", "A spike is more than the usual spend: give a ratio above 1 (say 3)."
            )
        if kind == RuleKind.RUN_WAITING and threshold < 1:
            self.add_error("threshold", "Give at least 1 minute.")
        return data


class AlertChannelForm(forms.Form):
    kind = forms.ChoiceField(choices=ChannelKind.choices, widget=forms.RadioSelect)
    name = forms.CharField(max_length=120)
    enabled = forms.BooleanField(required=False, initial=True)
    email_to = forms.CharField(
        label="Send to (e-mail channels)",
        required=False,
        max_length=1000,
        help_text="E-mail addresses, separated by commas.",
    )
    url = forms.CharField(
        label="URL (webhooks)",
        required=False,
        max_length=500,
        help_text="Receives a signed POST for each alert. Private and loopback addresses are "
        "refused unless an administrator allow-listed the host (A2A_OUTBOUND_ALLOWED_HOSTS).",
    )

    def __init__(self, *args: Any, fixed_kind: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if fixed_kind is not None:
            # A channel keeps its kind: an e-mail channel turned webhook would have no secret.
            self.fields["kind"].required = False
            self.fields["kind"].disabled = True
            self.initial["kind"] = fixed_kind
        self.fixed_kind = fixed_kind

    def clean_email_to(self) -> str:
        raw = self.cleaned_data.get("email_to", "")
        addresses = [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]
        if len(addresses) > MAX_RECIPIENTS:
            raise ValidationError(f"At most {MAX_RECIPIENTS} addresses.")
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError(f"“{address}” is not an e-mail address.") from None
        return ", ".join(addresses)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = self.fixed_kind or data.get("kind")
        data["kind"] = kind
        if kind == ChannelKind.EMAIL and not data.get("email_to") and "email_to" not in self.errors:
            self.add_error("email_to", "Give at least one address.")
        if kind == ChannelKind.WEBHOOK and "url" not in self.errors:
            url = (data.get("url") or "").strip()
            if not url:
                self.add_error("url", "Give the URL that receives the alerts.")
            else:
                try:
                    data["url"] = webhook_url_check(url)
                except OutboundHostUnresolved:
                    data["url"] = url  # DNS may be down or not set up yet; each send checks again
                except OutboundURLRefused as refused:
                    self.add_error("url", str(refused))
        return data
