"""Sections other apps add to the workspace settings page (the history's retention, …).

The accounts app cannot import the apps above it, so they register a template and a function
that gives its context for a membership; the page renders each one below its own sections.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from a2a_site.accounts.models import Membership


@dataclass(frozen=True)
class SettingsSection:
    key: str
    template: str
    context: Callable[[Membership], dict[str, Any]]


_SECTIONS: dict[str, SettingsSection] = {}


def settings_section_register(section: SettingsSection) -> None:
    _SECTIONS[section.key] = section


def settings_sections_for(membership: Membership) -> list[dict[str, Any]]:
    return [
        {"template": section.template, **section.context(membership)}
        for section in _SECTIONS.values()
    ]
