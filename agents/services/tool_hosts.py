"""A workspace's tool host policy: which hosts its agents' tools may fetch from."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Final

from django.core.exceptions import ValidationError

from a2a_site.accounts.models import Workspace
from agents.models import ToolHostPolicy

MAX_HOSTS: Final = 50
_LABEL: Final = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME_RE: Final = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


def host_pattern_clean(entry: str) -> str:
    """One host name, IP address or `*.suffix` pattern, normalized; ValidationError if not."""
    host = entry.strip().lower().rstrip(".")
    if "/" in host or "://" in host:
        raise ValidationError(f"“{entry}”: enter a host name only, without http:// or a path.")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if ":" in host:
        raise ValidationError(f"“{entry}”: enter a host name without a port.")
    name = host[2:] if host.startswith("*.") else host
    if not name or len(name) > 253 or not _HOSTNAME_RE.match(name):
        raise ValidationError(
            f"“{entry}” is not a host name (such as wiki.example.com) or a pattern (such as "
            "*.example.com)."
        )
    return host


def host_patterns_parse(text: str) -> list[str]:
    """Host patterns from text, one per line (commas and spaces separate too), de-duplicated."""
    hosts: list[str] = []
    errors: list[str] = []
    for entry in re.split(r"[\s,]+", text):
        if not entry:
            continue
        try:
            host = host_pattern_clean(entry)
        except ValidationError as error:
            errors.extend(error.messages)
            continue
        if host not in hosts:
            hosts.append(host)
    if len(hosts) > MAX_HOSTS:
        errors.append(f"List at most {MAX_HOSTS} hosts; use patterns such as *.example.com.")
    if errors:
        raise ValidationError(errors)
    return hosts


def tool_host_policy_update(
    *, workspace: Workspace, user: Any, public_hosts: bool, hosts: list[str]
) -> ToolHostPolicy:
    cleaned = host_patterns_parse("\n".join(hosts))
    policy, _ = ToolHostPolicy.objects.update_or_create(
        workspace=workspace,
        defaults={"public_hosts": public_hosts, "hosts": cleaned, "updated_by": user},
    )
    return policy
