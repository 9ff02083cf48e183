"""The engine's view of budgets between steps, and the budget check at launch.

Between steps a run asks whether a budget over its workspace, its workflow or the person who
launched it has reached its hard limit: one query per step for the budgets found when the run
started (none found: no query at all). Budgets over an agent or a provider, and budgets made
while the run executes, are enforced where every call is reserved (`agents.budgets`): the run
stops at the step whose call they refuse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from a2a_site.db import in_db_thread
from agents.budgets.enforcement import (
    SpendScope,
    budgets_exhausted,
    hard_budgets_for,
    workspace_has_budgets,
)
from agents.budgets.models import Budget
from workflows.engine.contracts import SpendStop


class LaunchRefused(ValidationError):
    """A run may not start (or be retried): a hard budget over it has no headroom."""


@dataclass
class DatabaseSpendGate:
    workspace_id: str
    workflow_id: str
    user_id: str
    _budgets: list[Budget] | None = field(default=None, repr=False)

    def _exhausted(self) -> SpendStop | None:
        if self._budgets is None and not workspace_has_budgets(self.workspace_id):
            self._budgets = []
            return None
        if self._budgets is None:
            self._budgets = hard_budgets_for(
                SpendScope(
                    workspace_id=str(self.workspace_id),
                    workflow_id=self.workflow_id or None,
                    user_id=self.user_id or None,
                )
            )
        exhausted = budgets_exhausted(self._budgets)
        if exhausted is None:
            return None
        return SpendStop(exhausted.reason, exhausted.key, exhausted.pause, exhausted.budget_id)

    async def exhausted(self, run_id: str) -> SpendStop | None:
        if self._budgets == []:
            return None  # no budget over this run when it started: nothing to ask
        return await in_db_thread(self._exhausted)


def launch_refusal(
    *,
    workspace_id: Any,
    workflow_id: Any,
    user_id: Any,
    agent_versions: dict[str, int],
    budgeted: bool | None = None,
) -> str | None:
    """Why a run may not start now (a hard budget over it has no headroom), or None.
    `budgeted`: whether the workspace has any budget, if the caller read it already."""
    from workflows.runtime import agent_versions_load

    scope = SpendScope(
        workspace_id=str(workspace_id),
        workflow_id=str(workflow_id),
        user_id=str(user_id) if user_id else None,
    )
    if budgeted is None:
        budgeted = workspace_has_budgets(workspace_id)
    if not budgeted:
        return None
    versions = agent_versions_load(agent_versions, str(workspace_id)) if agent_versions else {}
    provider_ids: Iterable[str] = {
        str(choice.provider_id)
        for _, _, config in versions.values()
        for choice in (config.model, *config.fallbacks)
    }
    budgets = hard_budgets_for(scope, agent_ids=list(agent_versions), provider_ids=provider_ids)
    exhausted = budgets_exhausted(budgets)
    if exhausted is None:
        return None
    return (
        f"Not started: {exhausted.reason} "
        "Raise the limit on the budget page, or wait for it to reset."
    )
