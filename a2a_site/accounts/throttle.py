"""Throttling of log-ins, password resets and sign-ups, per account and per client address.

Attempts are rows in the database (`AuthAttempt`), so the limits hold across every web process
and in both modes, and nothing depends on Redis. Each limit counts attempts over a sliding window
(`LOGIN_WINDOW_SECONDS`):

- log-in: failed attempts per account name (existing or not, so the answer reveals nothing) and
  per client address; a successful log-in forgets its account's failures;
- password reset and sign-up: every request, per e-mail address and per client address.

An attempt is written *before* it is checked and counted with the ones before it, so parallel
guesses cannot slip past the limit between a count and a write. A refused attempt is deleted
again: refusals do not extend a lock, which ends one window after the attempts that caused it —
the time the refusal names.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac

from a2a_site.accounts.models import AuthAttempt

Action = AuthAttempt.Action

_WHAT = {
    Action.LOGIN: "failed log-ins",
    Action.PASSWORD_RESET: "password-reset requests",
    Action.SIGNUP: "sign-ups",
}


@dataclass(frozen=True)
class Limits:
    per_account: int
    per_address: int
    window: timedelta


def throttle_limits(action: str) -> Limits:
    name = {Action.LOGIN: "FAILURES", Action.PASSWORD_RESET: "RESETS", Action.SIGNUP: "SIGNUPS"}
    per_account = getattr(settings, f"LOGIN_{name[Action(action)]}_PER_ACCOUNT")
    per_address = getattr(settings, f"LOGIN_{name[Action(action)]}_PER_ADDRESS")
    return Limits(per_account, per_address, timedelta(seconds=settings.LOGIN_WINDOW_SECONDS))


@dataclass(frozen=True)
class Throttled:
    """A refused attempt: what was refused and from when it may be tried again."""

    action: str
    retry_at: datetime

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil((self.retry_at - timezone.now()).total_seconds()))

    @property
    def message(self) -> str:
        minutes = math.ceil(self.retry_after_seconds / 60)
        wait = "1 minute" if minutes == 1 else f"{minutes} minutes"
        at = timezone.localtime(self.retry_at)
        return (
            f"Too many {_WHAT[Action(self.action)]} for this account or from your address. "
            f"Try again in {wait} (at {at:%H:%M} {at.tzname()})."
        )


def client_address(request: HttpRequest) -> str:
    """The client's address; behind LOGIN_PROXY_HOPS proxies, the one they saw. An IPv6 client
    is counted by its /64 network, since one host can use any address in it."""
    address = request.META.get("REMOTE_ADDR") or ""
    hops = settings.LOGIN_PROXY_HOPS
    if hops:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        ]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _digest(kind: str, value: str) -> str:
    return salted_hmac(f"a2a.throttle.{kind}", value.strip().lower()).hexdigest()


@dataclass(frozen=True)
class Attempt:
    pk: int
    action: str
    account: str


def _retry_at(rows: list[datetime], limit: int, window: timedelta) -> datetime:
    # A new attempt fits once fewer than `limit` remain in the window: when the oldest
    # `len(rows) - limit + 1` have left it.
    rows = sorted(rows)
    return rows[len(rows) - limit] + window


def attempt_begin(*, action: str, account: str, address: str) -> Attempt | Throttled:
    """Counts an attempt, or refuses it (and then does not count it)."""
    limits = throttle_limits(action)
    now = timezone.now()
    since = now - limits.window
    # Expired rows are never read again: the writers keep the table small.
    longest = max(throttle_limits(other).window for other in Action)
    AuthAttempt.objects.filter(at__lt=now - longest).delete()

    account_key, address_key = _digest("account", account), _digest("address", address)
    row = AuthAttempt.objects.create(
        action=action, account=account_key, address=address_key, at=now
    )
    recent = AuthAttempt.objects.filter(action=action, at__gt=since).exclude(pk=row.pk)
    by_account = list(recent.filter(account=account_key).values_list("at", flat=True))
    by_address = list(recent.filter(address=address_key).values_list("at", flat=True))
    retry = [
        _retry_at(rows, limit, limits.window)
        for rows, limit in ((by_account, limits.per_account), (by_address, limits.per_address))
        if len(rows) >= limit
    ]
    if retry:
        row.delete()
        return Throttled(action=action, retry_at=max(retry))
    return Attempt(pk=row.pk, action=action, account=account_key)


def login_succeeded(attempt: Attempt) -> None:
    """A right password: this attempt and the account's earlier failures stop counting."""
    AuthAttempt.objects.filter(action=Action.LOGIN, account=attempt.account).delete()


class ThrottledModelBackend(ModelBackend):
    """Django's username-and-password check behind the log-in throttle. A throttled attempt is
    refused without checking its password, and the request carries the `Throttled` for the log-in
    form's message (`request.login_throttled`). It replaces ModelBackend in
    AUTHENTICATION_BACKENDS: sessions begun under ModelBackend's name end once."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get(self._username_field())
        if request is None or username is None or password is None:
            return super().authenticate(request, username=username, password=password, **kwargs)
        outcome = attempt_begin(
            action=Action.LOGIN, account=str(username), address=client_address(request)
        )
        if isinstance(outcome, Throttled):
            request.login_throttled = outcome  # type: ignore[attr-defined]
            # PermissionDenied, not None: no backend listed after this one gets to try.
            raise PermissionDenied(outcome.message)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            login_succeeded(outcome)
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD
