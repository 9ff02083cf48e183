"""Writes to accounts and workspaces. Views call these; nothing else changes memberships."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from a2a_site.accounts.models import Membership, Role, User, Workspace

WORKSPACES_PER_USER_LIMIT = 50
_SIGNUP_SALT = "a2a.accounts.signup"


def signup_token(*, username: str, email: str) -> str:
    """What the sign-up e-mail's link carries: the username and the address it was sent to,
    signed, so following it proves the address."""
    return signing.dumps({"u": username, "e": email}, salt=_SIGNUP_SALT, compress=True)


def signup_token_read(token: str) -> tuple[str, str] | None:
    try:
        claim = signing.loads(token, salt=_SIGNUP_SALT, max_age=settings.SIGNUP_LINK_SECONDS)
    except signing.BadSignature:  # also an expired link
        return None
    if not isinstance(claim, dict) or not {"u", "e"} <= claim.keys():
        return None
    return str(claim["u"]), str(claim["e"])


def signup_taken(*, username: str, email: str) -> bool:
    return User.objects.filter(Q(username__iexact=username) | Q(email__iexact=email)).exists()


def signup_request(*, username: str, email: str, site_url: str) -> None:
    """Sends the sign-up e-mail. Its page answers the same whoever asks; what happens next is
    said only to the owner of the address: a link to choose a password, a reminder that the
    address has an account already, or that the username is taken."""
    site_url = site_url.rstrip("/")
    existing = User.objects.filter(email__iexact=email).first()
    context: dict[str, object] = {
        "username": username,
        "login_url": site_url + reverse("login"),
        "reset_url": site_url + reverse("password_reset"),
        "signup_url": site_url + reverse("signup"),
    }
    if existing is not None:
        context["existing"] = existing.get_username()
        template, subject = "existing", "You already have an A2A Studio account"
        email = existing.email
    elif User.objects.filter(username__iexact=username).exists():
        template, subject = "username_taken", "Choose another A2A Studio username"
    else:
        token = signup_token(username=username, email=email)
        context["confirm_url"] = site_url + reverse("signup_confirm", args=[token])
        context["hours"] = settings.SIGNUP_LINK_SECONDS // 3600
        template, subject = "confirm", "Finish creating your A2A Studio account"
    body = render_to_string(f"accounts/email/signup_{template}.txt", context)
    send_mail(subject, body, None, [email])


def user_signup(*, username: str, email: str, password: str) -> User:
    if signup_taken(username=username, email=email):
        raise ValidationError(
            "An account with this username or e-mail address was created since this link was "
            "sent. Log in, or sign up again."
        )
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError:  # the same link followed twice at once
        raise ValidationError(
            "An account with this username or e-mail address was created since this link was "
            "sent. Log in, or sign up again."
        ) from None


@transaction.atomic
def workspace_create(*, user: User, name: str) -> Workspace:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the workspace a name."})
    if Membership.objects.filter(user=user).count() >= WORKSPACES_PER_USER_LIMIT:
        raise ValidationError(
            f"You belong to {WORKSPACES_PER_USER_LIMIT} workspaces already; leave one first."
        )
    workspace = Workspace.objects.create(name=name, created_by=user)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    return workspace


def workspace_rename(*, workspace: Workspace, name: str) -> Workspace:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the workspace a name."})
    workspace.name = name
    workspace.save(update_fields=["name"])
    return workspace


def workspace_delete(*, workspace: Workspace, confirm_name: str) -> None:
    if confirm_name.strip() != workspace.name:
        raise ValidationError(
            {"confirm_name": "Type the workspace's name exactly to confirm deleting it."}
        )
    workspace.delete()


def _find_user(identifier: str) -> User:
    identifier = identifier.strip()
    if not identifier:
        raise ValidationError({"identifier": "Enter a username or an e-mail address."})
    query = Q(username__iexact=identifier)
    if "@" in identifier:
        query |= Q(email__iexact=identifier)
    user = User.objects.filter(query, is_active=True).first()
    if user is None:
        raise ValidationError(
            {
                "identifier": f"No account has the username or e-mail “{identifier}”. "
                "Ask them to sign up first, then invite them again."
            }
        )
    return user


def membership_invite(
    *, workspace: Workspace, invited_by: User, identifier: str, role: Role
) -> Membership:
    user = _find_user(identifier)
    try:
        with transaction.atomic():
            return Membership.objects.create(
                workspace=workspace, user=user, role=role, invited_by=invited_by
            )
    except IntegrityError:
        raise ValidationError(
            {"identifier": f"{user.username} is already a member of {workspace.name}."}
        ) from None


def _other_owners(membership: Membership) -> bool:
    return (
        Membership.objects.filter(workspace_id=membership.workspace_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )


@transaction.atomic
def membership_change_role(*, membership: Membership, role: Role) -> Membership:
    # Lock the workspace's owner rows so two owners demoting each other cannot leave none.
    list(
        Membership.objects.select_for_update()
        .filter(workspace_id=membership.workspace_id, role=Role.OWNER)
        .values_list("pk", flat=True)
    )
    if membership.role == Role.OWNER and role != Role.OWNER and not _other_owners(membership):
        raise ValidationError(
            "A workspace needs at least one owner: make someone else an owner first."
        )
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Removes a member; also how a member leaves. The last owner cannot go."""
    list(
        Membership.objects.select_for_update()
        .filter(workspace_id=membership.workspace_id, role=Role.OWNER)
        .values_list("pk", flat=True)
    )
    if membership.role == Role.OWNER and not _other_owners(membership):
        raise ValidationError(
            "The last owner cannot leave: make someone else an owner first, "
            "or delete the workspace."
        )
    membership.delete()
