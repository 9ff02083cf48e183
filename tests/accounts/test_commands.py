from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from a2a_site.accounts.demo import DEMO_PASSWORD, DEMO_USERNAME
from a2a_site.accounts.models import Membership, Role, User, Workspace


@pytest.mark.django_db
def test_createsuperuser_works_with_the_custom_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "an-admin-passphrase-1")
    call_command(
        "createsuperuser",
        interactive=False,
        username="root",
        email="root@example.com",
        verbosity=0,
    )
    admin = User.objects.get(username="root")
    assert admin.is_superuser and admin.check_password("an-admin-passphrase-1")


@pytest.mark.django_db
def test_seed_demo_is_idempotent(settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    user = User.objects.get(username=DEMO_USERNAME)
    assert user.check_password(DEMO_PASSWORD)
    assert Workspace.objects.count() == 1
    assert Membership.objects.get(user=user).role == Role.OWNER
    assert f"Log in as {DEMO_USERNAME} with the password {DEMO_PASSWORD}" in capsys.readouterr().out


@pytest.mark.django_db
def test_seed_demo_refuses_production(settings) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed_demo")
    assert not User.objects.exists()
