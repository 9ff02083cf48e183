"""The budget form: one target field per scope, the one the chosen scope names is used."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from a2a_site.accounts.models import Membership
from agents.budgets.models import Budget
from agents.budgets.services import BudgetInput
from agents.models import Agent, Provider
from workflows.models import Workflow

TARGET_FIELDS: dict[str, str] = {
    Budget.Scope.WORKFLOW: "workflow",
    Budget.Scope.AGENT: "agent",
    Budget.Scope.USER: "user",
    Budget.Scope.PROVIDER: "provider",
}


def _limit(label: str, help_text: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        min_value=Decimal(0),
        max_digits=14,
        decimal_places=6,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "placeholder": "none"}),
    )


class BudgetForm(forms.Form):
    name = forms.CharField(max_length=80, error_messages={"required": "Give the budget a name."})
    scope = forms.ChoiceField(
        label="Covers", choices=Budget.Scope.choices, widget=forms.Select(attrs={"data-scope": ""})
    )
    workflow = forms.ChoiceField(label="Workflow", required=False)
    agent = forms.ChoiceField(label="Agent", required=False)
    user = forms.ChoiceField(label="Person", required=False, help_text="Runs they launch.")
    provider = forms.ChoiceField(label="Provider", required=False)
    period = forms.ChoiceField(
        choices=Budget.Period.choices,
        initial=Budget.Period.MONTH,
        help_text="Spend starts again from zero at each new period.",
    )
    time_zone = forms.CharField(
        max_length=64,
        initial="UTC",
        help_text="Periods start at midnight in this zone, e.g. Europe/Paris (UTC if unsure).",
    )
    soft_limit = _limit("Soft limit (USD)", "Reaching it alerts; runs go on.")
    hard_limit = _limit(
        "Hard limit (USD)",
        "Runs that would spend past it are refused at launch, and runs in flight stop (or "
        "pause) at their next step. A call whose price is not known is refused under it.",
    )
    on_exceed = forms.ChoiceField(
        label="At the hard limit",
        choices=Budget.OnExceed.choices,
        initial=Budget.OnExceed.STOP,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, workspace_id: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choose = [("", "—")]
        fields: dict[str, Any] = self.fields
        fields["workflow"].choices = choose + [
            (str(pk), name)
            for pk, name in Workflow.objects.filter(workspace_id=workspace_id)
            .order_by("name")
            .values_list("pk", "name")
        ]
        fields["agent"].choices = choose + [
            (str(pk), name)
            for pk, name in Agent.objects.filter(workspace_id=workspace_id)
            .order_by("name")
            .values_list("pk", "name")
        ]
        fields["provider"].choices = choose + [
            (str(pk), name)
            for pk, name in Provider.objects.filter(workspace_id=workspace_id)
            .order_by("name")
            .values_list("pk", "name")
        ]
        fields["user"].choices = choose + [
            (str(pk), name)
            for pk, name in Membership.objects.filter(workspace_id=workspace_id)
            .order_by("user__username")
            .values_list("user_id", "user__username")
        ]

    @classmethod
    def initial_for(cls, budget: Budget) -> dict[str, Any]:
        initial: dict[str, Any] = {
            name: getattr(budget, name)
            for name in (
                "name",
                "scope",
                "period",
                "time_zone",
                "soft_limit",
                "hard_limit",
                "on_exceed",
            )
        }
        field = TARGET_FIELDS.get(budget.scope)
        if field:
            initial[field] = budget.target
        return initial

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        field = TARGET_FIELDS.get(str(cleaned.get("scope")))
        if field and not cleaned.get(field):
            label = str(self.fields[field].label).lower()
            self.add_error(field, f"Choose the {label} it covers.")
        return cleaned

    def to_input(self) -> BudgetInput:
        data = self.cleaned_data
        field = TARGET_FIELDS.get(data["scope"])
        return BudgetInput(
            name=data["name"],
            scope=data["scope"],
            target=data.get(field, "") if field else "",
            period=data["period"],
            time_zone=data["time_zone"].strip(),
            soft_limit=data.get("soft_limit"),
            hard_limit=data.get("hard_limit"),
            on_exceed=data["on_exceed"],
        )
