"""Guessing passwords, flooding resets and probing sign-ups, as Mallory would.

Mallory attacks from 203.0.113.66. Olivia (the owner persona) logs in from 198.51.100.7. The
limits are the defaults: 5 failed log-ins per account and 20 per address, 3 resets and 3 sign-ups
per e-mail address, 10 of each per address, over 15 minutes.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.db import connections
from django.test import Client
from django.urls import reverse

from a2a_site.accounts.models import AuthAttempt, User
from a2a_site.accounts.throttle import client_address
from tests.conftest import Personas, make_user

pytestmark = pytest.mark.django_db

MALLORY = "203.0.113.66"
OLIVIA_HOME = "198.51.100.7"
PASSWORD = "correct horse"  # every persona's


def log_in(client: Client, username: str, password: str, path: str = "") -> object:
    return client.post(path or reverse("login"), {"username": username, "password": password})


def logged_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def time_passes(seconds: int) -> None:
    """Moves every counted attempt into the past, as the clock would."""
    for attempt in AuthAttempt.objects.all():
        attempt.at -= timedelta(seconds=seconds)
        attempt.save(update_fields=["at"])


def test_thirty_wrong_passwords_then_the_right_one_is_refused_until_the_window_passes(
    personas: Personas,
) -> None:
    mallory = Client(REMOTE_ADDR=MALLORY)
    statuses = [log_in(mallory, "olivia", f"guess-{n}").status_code for n in range(30)]
    assert statuses == [200] * 5 + [429] * 25

    refused = log_in(mallory, "olivia", PASSWORD)
    assert refused.status_code == 429
    assert not logged_in(mallory)
    page = refused.content.decode()
    assert "Too many failed log-ins for this account or from your address" in page
    assert "Try again in 15 minutes" in page
    assert 0 < int(refused["Retry-After"]) <= 900
    # Refused attempts are not counted: the lock ends 15 minutes after the five failures.
    assert AuthAttempt.objects.filter(action="login").count() == 5

    # The account is locked wherever the right password comes from, Olivia's home included.
    olivia = Client(REMOTE_ADDR=OLIVIA_HOME)
    assert log_in(olivia, "olivia", PASSWORD).status_code == 429
    assert not logged_in(olivia)

    time_passes(14 * 60)
    assert log_in(olivia, "olivia", PASSWORD).status_code == 429
    time_passes(60 + 1)
    response = log_in(olivia, "olivia", PASSWORD)
    assert response.status_code == 302
    assert logged_in(olivia)
    # Her log-in forgets the account's failures.
    assert not AuthAttempt.objects.filter(action="login").exists()


def test_one_address_trying_many_accounts_is_stopped_and_others_are_not(
    personas: Personas,
) -> None:
    mallory = Client(REMOTE_ADDR=MALLORY)
    for n in range(20):
        assert log_in(mallory, f"user{n}", "password").status_code == 200
    # The 21st attempt from that address is refused, even with a right password...
    response = log_in(mallory, "eddie", PASSWORD)
    assert response.status_code == 429
    assert not logged_in(mallory)
    # ...while Eddie, elsewhere, logs in as usual.
    eddie = Client(REMOTE_ADDR="192.0.2.10")
    assert log_in(eddie, "eddie", PASSWORD).status_code == 302
    assert logged_in(eddie)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_cannot_slip_past_the_limit(personas: Personas) -> None:
    """Each attempt is written before it is counted, so guesses sent at once are checked no more
    often than guesses sent one by one."""

    def guess(n: int) -> int:
        try:
            return log_in(Client(REMOTE_ADDR=MALLORY), "olivia", f"guess-{n}").status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(guess, range(40)))
    assert statuses.count(200) <= 5, statuses
    assert statuses.count(429) >= 35
    assert AuthAttempt.objects.filter(action="login").count() <= 5


def test_an_unknown_username_is_throttled_exactly_like_a_real_one(personas: Personas) -> None:
    answers = {}
    for username in ("olivia", "nobody-here"):
        client = Client(REMOTE_ADDR=f"192.0.2.{len(answers) + 20}")
        statuses = [log_in(client, username, "wrong").status_code for _ in range(6)]
        answers[username] = (statuses, log_in(client, username, "wrong").content.decode())
    assert answers["olivia"][0] == answers["nobody-here"][0] == [200] * 5 + [429]
    assert "Too many failed log-ins" in answers["nobody-here"][1]


def test_a_successful_log_in_resets_the_account_count(personas: Personas) -> None:
    olivia = Client(REMOTE_ADDR=OLIVIA_HOME)
    for _ in range(4):
        assert log_in(olivia, "olivia", "typo").status_code == 200
    assert log_in(olivia, "olivia", PASSWORD).status_code == 302
    olivia.logout()
    for _ in range(5):
        assert log_in(olivia, "olivia", "typo").status_code == 200


def test_no_backend_listed_after_the_throttle_gets_the_refused_attempt(
    personas: Personas, settings
) -> None:
    settings.AUTHENTICATION_BACKENDS = [
        "a2a_site.accounts.throttle.ThrottledModelBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    mallory = Client(REMOTE_ADDR=MALLORY)
    for _ in range(5):
        log_in(mallory, "olivia", "guess")
    assert log_in(mallory, "olivia", PASSWORD).status_code == 429
    assert not logged_in(mallory)


def test_the_admin_log_in_is_throttled_too(personas: Personas) -> None:
    make_user("ada", is_staff=True, is_superuser=True)
    mallory = Client(REMOTE_ADDR=MALLORY)
    admin_login = reverse("admin:login")
    for _ in range(5):
        assert log_in(mallory, "ada", "guess", admin_login).status_code == 200
    response = log_in(mallory, "ada", PASSWORD, admin_login)
    assert not logged_in(mallory)
    assert "Too many failed log-ins" in response.content.decode()


def test_password_reset_requests_are_limited_per_address_and_per_account(
    personas: Personas,
) -> None:
    mallory = Client(REMOTE_ADDR=MALLORY)
    reset = reverse("password_reset")
    for _ in range(3):
        assert mallory.post(reset, {"email": "olivia@example.com"}).status_code == 302
    assert len(mail.outbox) == 3
    refused = mallory.post(reset, {"email": "olivia@example.com"})
    assert refused.status_code == 429
    assert "Too many password-reset requests" in refused.content.decode()
    # Olivia's inbox is protected from anywhere, not only from Mallory's address.
    elsewhere = Client(REMOTE_ADDR="192.0.2.30")
    assert elsewhere.post(reset, {"email": "OLIVIA@example.com"}).status_code == 429
    assert len(mail.outbox) == 3

    for n in range(7):  # 10 per address in all
        assert mallory.post(reset, {"email": f"x{n}@example.com"}).status_code == 302
    assert mallory.post(reset, {"email": "eddie@example.com"}).status_code == 429

    time_passes(15 * 60 + 1)
    assert mallory.post(reset, {"email": "olivia@example.com"}).status_code == 302


def signup(client: Client, username: str, email: str) -> object:
    return client.post(reverse("signup"), {"username": username, "email": email}, follow=True)


def test_sign_up_answers_the_same_whether_the_username_or_address_exists(
    personas: Personas,
) -> None:
    pages = []
    for n, (username, email) in enumerate(
        [
            ("newcomer", "newcomer@example.com"),
            ("olivia", "someone-new@example.com"),  # a taken username
            ("brand-new", "olivia@example.com"),  # a taken address
            ("OLIVIA", "OLIVIA@example.com"),  # both, in other case
        ]
    ):
        response = signup(Client(REMOTE_ADDR=f"192.0.2.{40 + n}"), username, email)
        assert response.redirect_chain == [(reverse("signup_sent"), 302)]
        # The same page but for its CSRF token, which is masked afresh for every response.
        pages.append(re.sub(rb'"X-CSRFToken": "[^"]+"', b"", response.content))
    assert len(set(pages)) == 1, "the page must not tell the cases apart"
    assert User.objects.count() == 4, "no account is created before the address is confirmed"

    # What happens next is told only to each address.
    outcomes = {message.to[0]: message for message in mail.outbox}
    assert "/accounts/signup/confirm/" in outcomes["newcomer@example.com"].body
    assert "that username is taken" in outcomes["someone-new@example.com"].body
    for message in mail.outbox[2:]:
        assert message.to == ["olivia@example.com"]
        assert 'already belongs to the account "olivia"' in message.body
        assert "/accounts/signup/confirm/" not in message.body


def test_sign_ups_are_limited_per_address_and_per_e_mail(personas: Personas) -> None:
    mallory = Client(REMOTE_ADDR=MALLORY)
    for n in range(3):
        assert signup(mallory, f"probe{n}", "victim@example.com").status_code == 200
    refused = signup(mallory, "probe9", "victim@example.com")
    assert refused.status_code == 429
    assert "Too many sign-ups" in refused.content.decode()
    assert len(mail.outbox) == 3
    for n in range(7):
        assert signup(mallory, f"probe-{n}", f"p{n}@example.com").status_code == 200
    assert signup(mallory, "last", "last@example.com").status_code == 429


@pytest.mark.parametrize(
    ("meta", "hops", "address"),
    [
        ({"REMOTE_ADDR": "203.0.113.66"}, 0, "203.0.113.66"),
        # Behind one proxy, the client is the last address it appended; a forged one is ignored.
        (
            {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.66"},
            1,
            "203.0.113.66",
        ),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}, 0, "10.0.0.2"),
        # An IPv6 host may use any address of its /64.
        ({"REMOTE_ADDR": "2001:db8:1:2:aaaa::1"}, 0, "2001:db8:1:2::/64"),
    ],
)
def test_the_client_address(settings, rf, meta: dict[str, str], hops: int, address: str) -> None:
    settings.LOGIN_PROXY_HOPS = hops
    request = rf.get("/", **meta)
    assert client_address(request) == address
