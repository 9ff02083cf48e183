"""The agent card of a workflow served over A2A, and the skills it declares.

A card describes the latest published version: its name and description are the workflow's, its
version is "<published number>.0.0", its skills are the ones edited on the workflow's page or,
when none were, one skill derived from the workflow (its inputs as the examples' shape).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import PROTOCOL_VERSION_1_0, TransportProtocol

from workflows.graph.schema import InputField

SECURITY_SCHEME = "bearer"
INPUT_MODES = ["text/plain", "application/json"]
OUTPUT_MODES = ["text/plain", "application/json"]
SKILL_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_SKILLS = 20


def skill_id_of(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]
    return slug or "run"


def derived_skill(*, name: str, description: str, fields: list[InputField]) -> dict[str, Any]:
    """The one skill a workflow has before anyone edits its skills."""
    if fields:
        shapes = ", ".join(
            f"{field.name}{'' if field.required else ' (optional)'}" for field in fields
        )
        how = f" Send a text message, or a data part with {shapes}."
    else:
        how = " Send a text message."
    return {
        "id": skill_id_of(name),
        "name": name,
        "description": (description or f"Runs the workflow “{name}”.") + how,
        "tags": ["workflow"],
        "examples": [],
    }


def clean_skills(raw: Any) -> list[dict[str, Any]]:
    """Skills as edited on the page, checked; ValueError says what is wrong, naming the skill."""
    if not isinstance(raw, list):
        raise ValueError("Skills are a list.")
    if len(raw) > MAX_SKILLS:
        raise ValueError(f"At most {MAX_SKILLS} skills.")
    seen: set[str] = set()
    skills: list[dict[str, Any]] = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            raise ValueError(f"Skill {number}: expected an object.")
        name = str(item.get("name") or "").strip()[:120]
        if not name:
            raise ValueError(f"Skill {number}: give it a name.")
        skill_id = str(item.get("id") or "").strip() or skill_id_of(name)
        if not SKILL_ID_PATTERN.match(skill_id):
            raise ValueError(
                f"Skill {number} ({name}): its id uses lower-case letters, digits, - and _."
            )
        if skill_id in seen:
            raise ValueError(f"Skill {number} ({name}): the id {skill_id} is used twice.")
        seen.add(skill_id)
        description = str(item.get("description") or "").strip()[:1000]
        if not description:
            raise ValueError(f"Skill {number} ({name}): describe what it does.")
        tags = [str(tag).strip()[:40] for tag in item.get("tags") or [] if str(tag).strip()]
        examples = [
            str(example).strip()[:500] for example in item.get("examples") or [] if str(example)
        ]
        skills.append(
            {
                "id": skill_id,
                "name": name,
                "description": description,
                "tags": tags[:10] or ["workflow"],
                "examples": examples[:10],
            }
        )
    return skills


def agent_card(
    *,
    url: str,
    name: str,
    description: str,
    version: int,
    skills: list[dict[str, Any]],
    organization: str,
    provider_url: str,
    secured: bool = True,
) -> AgentCard:
    """The card served at `<url>.well-known/agent-card.json` (`url` ends with a slash)."""
    card = AgentCard(
        name=name,
        description=description or f"The workflow “{name}” of {organization}, as an A2A agent.",
        version=f"{version}.0.0",
        supported_interfaces=[
            # The trailing slash is the route's own: a client posting to it is not redirected.
            AgentInterface(
                url=url,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_1_0,
            ),
            AgentInterface(
                url=f"{url}rest",
                protocol_binding=TransportProtocol.HTTP_JSON.value,
                protocol_version=PROTOCOL_VERSION_1_0,
            ),
        ],
        provider=AgentProvider(organization=organization, url=provider_url),
        capabilities=AgentCapabilities(
            streaming=True, push_notifications=False, extended_agent_card=False
        ),
        security_schemes={
            SECURITY_SCHEME: SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer",
                    bearer_format="A2A Studio API token",
                    description="An API token (Settings → API tokens) with the run scope, "
                    "from a member of the workflow's workspace who may run it.",
                )
            )
        },
        security_requirements=[
            SecurityRequirement(schemes={SECURITY_SCHEME: StringList(list=["run"])})
        ],
        default_input_modes=INPUT_MODES,
        default_output_modes=OUTPUT_MODES,
        skills=[
            AgentSkill(
                id=skill["id"],
                name=skill["name"],
                description=skill["description"],
                tags=skill.get("tags") or ["workflow"],
                examples=skill.get("examples") or [],
                input_modes=INPUT_MODES,
                output_modes=OUTPUT_MODES,
            )
            for skill in skills
        ],
    )
    if not secured:
        card.ClearField("security_schemes")
        card.ClearField("security_requirements")
    return card
