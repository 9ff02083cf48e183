"""The retention section of the workspace settings page."""

from __future__ import annotations

from typing import Any

from a2a_site.accounts.models import Membership, Role
from monitoring.history.forms import RetentionForm
from workflows.models import Run
from workflows.services.history import retention_policy_of


def retention_context(membership: Membership) -> dict[str, Any]:
    policy = retention_policy_of(membership.workspace_id)
    keep_days = policy.keep_days if policy else None
    initial = {
        "mode": RetentionForm.KEEP_DAYS if keep_days else RetentionForm.KEEP_FOREVER,
        "days": keep_days or 90,
    }
    return {
        "retention_policy": policy,
        "retention_days": keep_days,
        "retention_form": RetentionForm(initial=initial),
        "retention_can_edit": membership.allows(Role.OWNER),
        "pinned_runs": Run.objects.filter(
            workspace_id=membership.workspace_id, pinned=True
        ).count(),
    }
