"""The workflow page's A2A panel: the switch and the skills (editors), the card's address."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from a2a_site.accounts.models import Role
from a2a_site.http import AuthedRequest
from workflows.a2a.services import a2a_exposure_set, skills_as_text, skills_from_text
from workflows.models import A2AExposure, Workflow
from workflows.selectors import get_workflow_for_user


@login_required
@require_POST
def workflow_a2a(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    workflow, _ = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    enabled = request.POST.get("enabled") == "on"
    try:
        skills = (
            skills_from_text(request.POST.get("skills", "")) if "skills" in request.POST else None
        )
        a2a_exposure_set(workflow=workflow, user=request.user, enabled=enabled, skills=skills)
    except (ValueError, ValidationError) as error:
        # The page again, with what was typed and why it was refused: nothing is lost.
        from django.shortcuts import render

        from workflows.views import workflow_detail_context

        text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        context = workflow_detail_context(request, workflow)
        context["a2a"].update(
            error=f"Not saved: {text}",
            skills_text=request.POST.get("skills", ""),
            enabled_asked=enabled,
        )
        return render(request, "workflows/workflow_detail.html", context, status=400)
    else:
        messages.success(
            request,
            "Served as an A2A agent." if enabled else "No longer served as an A2A agent.",
        )
    return redirect(f"/workflows/{workflow.pk}/#a2a")


def a2a_panel(workflow: Workflow, base_url: str) -> dict[str, Any]:
    """What the workflow page shows about its A2A agent."""
    exposure = A2AExposure.objects.filter(workflow=workflow).first()
    root = base_url.rstrip("/")
    agent_url = f"{root}/a2a/{workflow.pk}/"
    skills = list(exposure.skills) if exposure else []
    return {
        "enabled": bool(exposure and exposure.enabled),
        "enabled_asked": bool(exposure and exposure.enabled),
        "agent_url": agent_url,
        "card_url": f"{agent_url}.well-known/agent-card.json",
        "skills_text": skills_as_text(skills),
        "custom_skills": bool(skills),
        "updated_by": exposure.updated_by if exposure else None,
        "updated_at": exposure.updated_at if exposure else None,
    }
