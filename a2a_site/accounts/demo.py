"""The demo account that `make run` seeds, so a newcomer can look around at once."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from a2a_site.accounts.models import Membership, Role, User, Workspace

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-studio"  # public on purpose; `seed_demo` refuses to run with DEBUG off
DEMO_WORKSPACE = "Demo workspace"


@dataclass(frozen=True)
class DemoSeed:
    user: User
    workspace: Workspace
    created: bool


@transaction.atomic
def demo_seed() -> DemoSeed:
    user, created = User.objects.get_or_create(
        username=DEMO_USERNAME, defaults={"email": "demo@example.com"}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    membership = (
        Membership.objects.select_related("workspace")
        .filter(user=user, workspace__name=DEMO_WORKSPACE)
        .first()
    )
    if membership is None:
        workspace = Workspace.objects.create(name=DEMO_WORKSPACE, created_by=user)
        Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
        return DemoSeed(user=user, workspace=workspace, created=True)
    return DemoSeed(user=user, workspace=membership.workspace, created=created)
