"""Workspaces and members, through the pages people use."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from a2a_site.accounts.models import Membership, Role, User, Workspace
from a2a_site.accounts.selectors import SESSION_WORKSPACE_KEY
from tests.conftest import Personas, make_user


def _link_in(message: mail.EmailMessage) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/signup/confirm/\S+)", message.body)
    assert match, message.body
    return match.group(1)


@pytest.mark.django_db
def test_signup_confirms_the_address_then_logs_in_to_the_workspace_empty_state(client) -> None:
    response = client.post(
        reverse("signup"), {"username": "nadia", "email": "nadia@example.com"}, follow=True
    )
    assert "We sent a message to the address you entered" in response.content.decode()
    assert not User.objects.filter(username="nadia").exists()
    [message] = mail.outbox
    assert message.to == ["nadia@example.com"]
    link = _link_in(message)

    page = client.get(link)
    assert page.status_code == 200
    assert "Choose your password" in page.content.decode()
    weak = client.post(link, {"password1": "nadia123", "password2": "nadia123"})
    assert weak.status_code == 200
    assert not User.objects.filter(username="nadia").exists()

    response = client.post(
        link,
        {"password1": "a-long-passphrase-42", "password2": "a-long-passphrase-42"},
        follow=True,
    )
    assert response.status_code == 200
    assert b"Start with a <strong>workspace</strong>" in response.content
    assert User.objects.get(username="nadia").email == "nadia@example.com"

    # The link served its purpose; a second visit says so instead of creating anything.
    client.logout()
    used = client.get(link)
    assert used.status_code == 409
    assert "exists already" in used.content.decode()


@pytest.mark.django_db
def test_a_tampered_or_expired_signup_link_is_refused(client, settings) -> None:
    client.post(reverse("signup"), {"username": "nadia", "email": "nadia@example.com"})
    link = _link_in(mail.outbox[0])
    tampered = client.get(link.replace("/confirm/", "/confirm/x"))
    assert tampered.status_code == 400
    assert "expired or incomplete" in tampered.content.decode()
    settings.SIGNUP_LINK_SECONDS = -1  # every link is older than that
    assert client.get(link).status_code == 400
    assert not User.objects.filter(username="nadia").exists()


@pytest.mark.django_db
def test_signup_of_an_email_in_use_whatever_its_case_creates_nothing(client) -> None:
    make_user("alice")
    response = client.post(
        reverse("signup"), {"username": "alice2", "email": "ALICE@example.com"}, follow=True
    )
    assert response.status_code == 200
    assert "We sent a message" in response.content.decode()
    assert not User.objects.filter(username="alice2").exists()
    [message] = mail.outbox
    assert message.to == ["alice@example.com"]
    assert "Log in:" in message.body


@pytest.mark.django_db
def test_signup_can_be_turned_off(client, settings) -> None:
    settings.SIGNUP_ENABLED = False
    response = client.post(reverse("signup"), {"username": "x"})
    assert response.status_code == 403
    assert b"Sign-up is closed" in response.content
    assert not User.objects.exists()
    assert b"Create an account" not in client.get(reverse("login")).content


@pytest.mark.django_db
def test_creating_a_workspace_makes_the_creator_owner_and_current(client) -> None:
    user = make_user("nadia")
    client.force_login(user)
    response = client.post(reverse("workspace_create"), {"name": "  Nadia's lab  "})
    workspace = Workspace.objects.get()
    assert response.status_code == 302
    assert workspace.name == "Nadia's lab"
    assert Membership.objects.get(user=user).role == Role.OWNER
    assert client.session[SESSION_WORKSPACE_KEY] == str(workspace.id)


@pytest.mark.django_db
def test_a_blank_workspace_name_is_explained(client) -> None:
    client.force_login(make_user("nadia"))
    response = client.post(reverse("workspace_create"), {"name": "   "})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not Workspace.objects.exists()


def test_switching_workspace_changes_what_pages_show(personas: Personas, client_for) -> None:
    second = Workspace.objects.create(name="Second lab")
    Membership.objects.create(workspace=second, user=personas.editor, role=Role.VIEWER)
    client = client_for(personas.editor)
    assert b"Lab" in client.get(reverse("agent_list")).content

    response = client.post(
        reverse("workspace_switch", args=[second.id]), {"next": reverse("agent_list")}
    )
    assert response["Location"] == reverse("agent_list")
    assert b"No agents in Second lab yet" in client.get(reverse("agent_list")).content


def test_switch_ignores_a_next_url_on_another_site(personas: Personas, client_for) -> None:
    response = client_for(personas.owner).post(
        reverse("workspace_switch", args=[personas.workspace.id]), {"next": "https://evil.test/"}
    )
    assert response["Location"] == reverse("home")


def test_a_stale_current_workspace_falls_back_to_one_the_user_has(
    personas: Personas, client_for
) -> None:
    client = client_for(personas.outsider)
    session = client.session
    session[SESSION_WORKSPACE_KEY] = str(personas.workspace.id)  # not theirs
    session.save()
    response = client.get(reverse("agent_list"))
    assert b"No agents in Elsewhere yet" in response.content
    assert client.session[SESSION_WORKSPACE_KEY] == str(personas.other_workspace.id)


def test_owner_invites_by_email_with_htmx_and_sees_the_member(
    personas: Personas, client_for
) -> None:
    newcomer = make_user("nina")
    response = client_for(personas.owner).post(
        reverse("member_invite", args=[personas.workspace.id]),
        {"identifier": "NINA@example.com", "role": "viewer"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b'id="members"' in response.content
    assert b"nina joined as viewer." in response.content
    membership = Membership.objects.get(user=newcomer, workspace=personas.workspace)
    assert membership.role == Role.VIEWER
    assert membership.invited_by == personas.owner


def test_inviting_someone_unknown_or_already_in_is_explained(
    personas: Personas, client_for
) -> None:
    client = client_for(personas.owner)
    url = reverse("member_invite", args=[personas.workspace.id])
    unknown = client.post(url, {"identifier": "ghost", "role": "editor"})
    assert unknown.status_code == 400
    assert "Ask them to sign up first" in unknown.content.decode()
    again = client.post(url, {"identifier": "eddie", "role": "editor"})
    assert again.status_code == 400
    assert "eddie is already a member of Lab" in again.content.decode()
    assert Membership.objects.filter(workspace=personas.workspace).count() == 3


def test_owner_changes_a_role(personas: Personas, client_for) -> None:
    membership = personas.membership(personas.editor)
    client_for(personas.owner).post(
        reverse("member_role", args=[personas.workspace.id, membership.id]), {"role": "owner"}
    )
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_the_last_owner_can_neither_step_down_nor_leave(personas: Personas, client_for) -> None:
    client = client_for(personas.owner)
    own = personas.membership(personas.owner)
    response = client.post(
        reverse("member_role", args=[personas.workspace.id, own.id]),
        {"role": "editor"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    assert "at least one owner" in response.content.decode()
    response = client.post(reverse("workspace_leave", args=[personas.workspace.id]), follow=True)
    assert "The last owner cannot leave" in response.content.decode()
    own.refresh_from_db()
    assert own.role == Role.OWNER


def test_an_owner_can_leave_once_another_owner_exists(personas: Personas, client_for) -> None:
    Membership.objects.filter(user=personas.editor).update(role=Role.OWNER)
    client_for(personas.owner).post(reverse("workspace_leave", args=[personas.workspace.id]))
    assert not Membership.objects.filter(user=personas.owner).exists()


def test_a_viewer_can_leave(personas: Personas, client_for) -> None:
    response = client_for(personas.viewer).post(
        reverse("workspace_leave", args=[personas.workspace.id])
    )
    assert response["Location"] == reverse("workspace_list")
    assert not Membership.objects.filter(user=personas.viewer).exists()


def test_owner_removes_a_member(personas: Personas, client_for) -> None:
    membership = personas.membership(personas.viewer)
    client_for(personas.owner).post(
        reverse("member_remove", args=[personas.workspace.id, membership.id])
    )
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_a_membership_of_another_workspace_is_not_found(personas: Personas, client_for) -> None:
    foreign = Membership.objects.get(user=personas.outsider)
    response = client_for(personas.owner).post(
        reverse("member_remove", args=[personas.workspace.id, foreign.id])
    )
    assert response.status_code == 404
    assert Membership.objects.filter(pk=foreign.pk).exists()


def test_deleting_a_workspace_needs_its_exact_name(personas: Personas, client_for) -> None:
    client = client_for(personas.owner)
    url = reverse("workspace_delete", args=[personas.workspace.id])
    refused = client.post(url, {"confirm_name": "lab"})
    assert refused.status_code == 400
    assert "Type the workspace" in refused.content.decode()
    assert Workspace.objects.filter(pk=personas.workspace.pk).exists()
    client.post(url, {"confirm_name": "Lab"})
    assert not Workspace.objects.filter(pk=personas.workspace.pk).exists()
    assert not Membership.objects.filter(workspace_id=personas.workspace.pk).exists()


def test_viewer_sees_members_but_no_controls(personas: Personas, client_for) -> None:
    response = client_for(personas.viewer).get(
        reverse("workspace_settings", args=[personas.workspace.id])
    )
    content = response.content.decode()
    assert "olivia" in content and "eddie" in content
    assert "Invite someone" not in content
    assert "Delete workspace" not in content


def test_workspace_list_counts_members(personas: Personas, client_for) -> None:
    response = client_for(personas.owner).get(reverse("workspace_list"))
    memberships = list(response.context["memberships"])
    assert [(m.workspace.name, m.member_count) for m in memberships] == [("Lab", 3)]


@pytest.mark.django_db
def test_password_reset_mails_a_working_link(client, mailoutbox) -> None:
    make_user("nadia")
    sent = client.post(reverse("password_reset"), {"email": "nadia@example.com"})
    assert sent["Location"] == reverse("password_reset_done"), sent.content.decode()[:2000]
    assert len(mailoutbox) == 1
    body = mailoutbox[0].body
    link = next(line for line in body.splitlines() if "/accounts/reset/" in line)
    path = link.split("testserver", 1)[1]
    form = client.get(path, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "another-passphrase-7", "new_password2": "another-passphrase-7"},
    )
    assert done.status_code == 302
    assert User.objects.get(username="nadia").check_password("another-passphrase-7")


def test_the_overview_checks_off_what_is_done(personas: Personas, client_for) -> None:
    from tests.agents.factories import make_provider

    client = client_for(personas.owner)
    before = client.get(reverse("home")).content.decode()
    assert before.count('class="done"') == 1  # the workspace itself
    make_provider(personas.workspace)
    after = client.get(reverse("home")).content.decode()
    assert after.count('class="done"') == 2
    assert "1 connected." in after
