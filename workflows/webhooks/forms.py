from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from a2a_site.accounts.models import Workspace
from workflows.models import Workflow
from workflows.webhooks.models import WebhookEvent
from workflows.webhooks.services import subscription_clean


class SubscriptionForm(forms.Form):
    name = forms.CharField(
        max_length=120, help_text="What receives it, e.g. “Deploy bot” or “Ops chat”."
    )
    url = forms.CharField(
        label="URL",
        max_length=500,
        help_text="Receives a signed POST for each event. Private and loopback addresses are "
        "refused unless an administrator allow-listed the host (A2A_OUTBOUND_ALLOWED_HOSTS).",
    )
    events = forms.MultipleChoiceField(
        choices=[(event.value, f"{event.value} — {event.label}") for event in WebhookEvent],
        widget=forms.CheckboxSelectMultiple,
        initial=["run.succeeded", "run.failed"],
    )
    workflow = forms.ChoiceField(
        label="Runs of",
        required=False,
        help_text="Alert events are the workspace's whichever you choose.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        workflows = Workflow.objects.filter(workspace=workspace).order_by("name")
        self.fields["workflow"].choices = [("", "Every workflow")] + [  # type: ignore[attr-defined]
            (str(workflow.pk), workflow.name) for workflow in workflows
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            data["subscription"] = subscription_clean(
                workspace=self.workspace,
                name=data.get("name", ""),
                url=data.get("url", ""),
                events=data.get("events", []),
                workflow_id=data.get("workflow") or None,
            )
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
        return data
