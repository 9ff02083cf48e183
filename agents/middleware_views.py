"""The gateway middleware page: a workspace's ordered hooks, edited as rows of a form.

Every member sees which hooks apply to the workspace's model calls; owners change them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from a2a_site.accounts.access import require_role
from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Membership, Role
from a2a_site.http import AuthedRequest
from agents.llm.middleware import MAX_HOOKS, Middleware
from agents.models import GatewayMiddleware
from agents.services.middleware import gateway_middleware_update, middleware_of

KIND_CHOICES = [
    ("", "—"),
    ("redact", "Redact"),
    ("preamble", "System preamble"),
    ("block", "Block keywords"),
    ("log", "Log to the trace"),
]
TARGET_CHOICES = [("both", "prompts and outputs"), ("prompts", "prompts"), ("outputs", "outputs")]


class HookForm(forms.Form):
    kind = forms.ChoiceField(label="Hook", choices=KIND_CHOICES, required=False)
    value = forms.CharField(
        label="Pattern, text or keywords",
        required=False,
        max_length=4000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
    )
    replacement = forms.CharField(
        label="Replace with",
        required=False,
        max_length=100,
        help_text="Redact only; empty: [redacted].",
    )
    apply_to = forms.ChoiceField(
        label="Applies to",
        choices=TARGET_CHOICES,
        initial="both",
        help_text="Redact and block only.",
    )

    def hook(self) -> dict[str, Any] | None:
        """The hook this row describes, or None for an empty row."""
        data = self.cleaned_data
        kind = data.get("kind")
        value = data.get("value") or ""
        if not kind:
            return None
        if kind == "redact":
            return {
                "kind": kind,
                "pattern": value.strip(),
                "replacement": data.get("replacement") or "[redacted]",
                "apply_to": data.get("apply_to") or "both",
            }
        if kind == "preamble":
            return {"kind": kind, "text": value.strip()}
        if kind == "block":
            keywords = [line.strip() for line in value.splitlines() if line.strip()]
            return {"kind": kind, "keywords": keywords, "apply_to": data.get("apply_to") or "both"}
        return {"kind": kind}


HookFormSet = forms.formset_factory(
    HookForm, extra=2, can_order=True, can_delete=True, max_num=MAX_HOOKS, validate_max=True
)


def hook_initial(hook: dict[str, Any]) -> dict[str, Any]:
    kind = hook["kind"]
    value = {
        "redact": hook.get("pattern", ""),
        "preamble": hook.get("text", ""),
        "block": "\n".join(hook.get("keywords", [])),
    }.get(kind, "")
    return {
        "kind": kind,
        "value": value,
        "replacement": hook.get("replacement", ""),
        "apply_to": hook.get("apply_to", "both"),
    }


def middleware_describe(middleware: Middleware) -> list[str]:
    """One line per hook, for people (the settings page and this page's summary)."""
    lines = []
    for hook in middleware.model_dump()["hooks"]:
        kind = hook["kind"]
        if kind == "redact":
            where = TARGET_LABELS[hook["apply_to"]]
            lines.append(f"Redact /{hook['pattern']}/ → {hook['replacement']} in {where}")
        elif kind == "preamble":
            text = hook["text"]
            lines.append(f"Add a system preamble: “{text[:80]}{'…' if len(text) > 80 else ''}”")
        elif kind == "block":
            where = TARGET_LABELS[hook["apply_to"]]
            lines.append(f"Block {where} containing: {', '.join(hook['keywords'])}")
        else:
            lines.append("Log what the hooks did to the trace")
    return lines


TARGET_LABELS = dict(TARGET_CHOICES)


def middleware_settings_context(membership: Membership) -> dict[str, Any]:
    """The workspace settings page's section."""
    return {"middleware_lines": middleware_describe(middleware_of(membership.workspace_id))}


@workspace_required(Role.VIEWER)
@require_http_methods(["GET", "POST"])
def gateway_middleware_edit(request: AuthedRequest) -> HttpResponse:
    membership = request.membership
    assert membership is not None
    workspace = membership.workspace
    can_edit = membership.allows(Role.OWNER)
    errors: list[str] = []
    if request.method == "POST":
        require_role(membership, Role.OWNER)
        formset = HookFormSet(request.POST)
        if formset.is_valid():
            # In their order numbers (rows without one last); empty and deleted rows drop out.
            hooks = [form.hook() for form in formset.ordered_forms]
            try:
                gateway_middleware_update(
                    workspace=workspace, user=request.user, hooks=[h for h in hooks if h]
                )
            except ValidationError as error:
                errors = error.messages
            else:
                messages.success(request, "Middleware saved; the next model call uses it.")
                return redirect("gateway_middleware")
    else:
        current = middleware_of(workspace.pk).model_dump()["hooks"]
        formset = HookFormSet(
            initial=[
                {**hook_initial(hook), "ORDER": index}
                for index, hook in enumerate(current, start=1)
            ]
        )
    row = GatewayMiddleware.objects.filter(workspace=workspace).first()
    return render(
        request,
        "agents/gateway_middleware.html",
        {
            "formset": formset,
            "errors": errors,
            "can_edit": can_edit,
            "row": row,
            "lines": middleware_describe(middleware_of(workspace.pk)),
        },
    )
