"""The gateway middleware page and its effect on real runs."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from agents.models import GatewayMiddleware
from agents.services.middleware import middleware_of
from tests.conftest import Personas

pytestmark = pytest.mark.django_db

CARD = r"\b\d{4}(?: ?\d{4}){3}\b"


def management(total: int, initial: int = 0) -> dict[str, str]:
    return {
        "form-TOTAL_FORMS": str(total),
        "form-INITIAL_FORMS": str(initial),
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "30",
    }


def row(index: int, **fields: str) -> dict[str, str]:
    return {f"form-{index}-{name}": value for name, value in fields.items()}


def test_an_owner_saves_hooks_in_the_order_they_number_them(
    personas: Personas, client_for: Any
) -> None:
    data = {
        **management(3),
        **row(0, kind="redact", value=CARD, replacement="[card]", apply_to="both", ORDER="2"),
        **row(1, kind="preamble", value="Be brief.", apply_to="both", ORDER="1"),
        **row(2, kind="", value="", apply_to="both"),
    }
    response = client_for(personas.owner).post(reverse("gateway_middleware"), data)
    assert response.status_code == 302
    kinds = [hook["kind"] for hook in GatewayMiddleware.objects.get().hooks]
    assert kinds == ["preamble", "redact"]
    page = client_for(personas.viewer).get(reverse("gateway_middleware")).content.decode()
    assert "Add a system preamble: “Be brief.”" in page
    assert "Only owners change the hooks." in page
    settings_page = client_for(personas.viewer).get(
        reverse("workspace_settings_current"), follow=True
    )
    assert "Redact /" in settings_page.content.decode()


def test_a_hook_that_cannot_work_is_explained_and_nothing_is_saved(
    personas: Personas, client_for: Any
) -> None:
    data = {
        **management(2),
        **row(0, kind="log", apply_to="both"),
        **row(1, kind="redact", value="(unclosed", apply_to="both"),
    }
    response = client_for(personas.owner).post(reverse("gateway_middleware"), data)
    assert response.status_code == 200
    assert "Hook 2: not a valid pattern" in response.content.decode()
    assert not GatewayMiddleware.objects.exists()


def test_only_owners_change_the_hooks(personas: Personas, client_for: Any) -> None:
    data = {**management(1), **row(0, kind="log", apply_to="both")}
    for user in (personas.viewer, personas.editor):
        response = client_for(user).post(reverse("gateway_middleware"), data)
        assert response.status_code == 403
    assert middleware_of(personas.workspace.pk).hooks == []
