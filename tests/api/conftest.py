"""Fixtures for the public API's tests: tokens for the personas, and a client that speaks to
the API as a script does (bearer token, JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from a2a_site.accounts.models import User, Workspace
from a2a_site.api.models import ApiToken
from a2a_site.api.tokens import token_create


def make_token(
    user: User,
    scope: str = "admin",
    *,
    workspace: Workspace | None = None,
    kind: str = ApiToken.Kind.PERSONAL,
    name: str = "script",
) -> str:
    return token_create(user=user, name=name, scope=scope, kind=kind, workspace=workspace).secret


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def problem(self) -> dict[str, Any]:
        assert self.headers.get("content-type", "").startswith("application/problem+json"), (
            self.status,
            self.headers,
            self.body,
        )
        assert {"type", "title", "status", "detail", "errors"} <= set(self.body), self.body
        assert self.body["status"] == self.status
        return dict(self.body)


class InProcessApi:
    """The API through Django's test client (in-process); the contract tests use daphne."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Answer:
        extra = {**(headers or {})}
        if self.token is not None:
            extra["Authorization"] = f"Bearer {self.token}"
        data: Any = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs: dict[str, Any] = {"headers": extra}
        if method == "get":
            response = self.client.get(path, query or {}, **kwargs)
        else:
            response = getattr(self.client, method)(
                path, data, content_type="application/json", **kwargs
            )
        try:
            parsed = json.loads(response.content) if response.content else None
        except ValueError:
            parsed = response.content.decode(errors="replace")
        return Answer(
            response.status_code, {k.lower(): v for k, v in response.headers.items()}, parsed
        )


@pytest.fixture
def api_as() -> Callable[..., InProcessApi]:
    return InProcessApi
