"""Turning a workflow's A2A agent on and off, and editing its skills (the workflow's page)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from a2a_site.accounts.models import User
from workflows.a2a.card import clean_skills
from workflows.models import A2AExposure, Workflow


def a2a_exposure_of(workflow: Workflow) -> A2AExposure | None:
    return A2AExposure.objects.filter(workflow=workflow).first()


def a2a_exposure_set(
    *, workflow: Workflow, user: User, enabled: bool, skills: Any = None
) -> A2AExposure:
    """Serves the workflow as an A2A agent, or stops; `skills` (None: keep them) replace the
    card's skills, an empty list going back to the one derived from the workflow."""
    if enabled and not workflow.latest_version:
        raise ValidationError(
            {"enabled": "Publish the workflow first: an A2A agent runs its published version."}
        )
    fields: dict[str, Any] = {"enabled": enabled, "updated_by": user}
    if skills is not None:
        try:
            fields["skills"] = clean_skills(skills)
        except ValueError as error:
            raise ValidationError({"skills": str(error)}) from None
    exposure, _ = A2AExposure.objects.update_or_create(workflow=workflow, defaults=fields)
    return exposure


def skills_from_text(text: str) -> list[dict[str, Any]]:
    """The page's skills box: one skill per block separated by a blank line, its first line
    `id: name` (or just a name), then its description, then `tags: a, b` and `example: …`
    lines. ValueError says which block is wrong."""
    skills: list[dict[str, Any]] = []
    for number, block in enumerate(_blocks(text), start=1):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        head, description, tags, examples = lines[0], [], [], []
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == "tags":
                tags = [tag.strip() for tag in value.split(",") if tag.strip()]
            elif sep and key.strip().lower() == "example":
                examples.append(value.strip())
            else:
                description.append(line)
        skill_id, sep, name = head.partition(":")
        if not sep:
            skill_id, name = "", head
        if not description:
            raise ValueError(f"Skill {number} ({name.strip()}): add a line describing it.")
        skills.append(
            {
                "id": skill_id.strip(),
                "name": name.strip(),
                "description": " ".join(description),
                "tags": tags,
                "examples": examples,
            }
        )
    return skills


def skills_as_text(skills: list[dict[str, Any]]) -> str:
    blocks = []
    for skill in skills:
        lines = [f"{skill['id']}: {skill['name']}", skill["description"]]
        if skill.get("tags"):
            lines.append("tags: " + ", ".join(skill["tags"]))
        lines += [f"example: {example}" for example in skill.get("examples") or []]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _blocks(text: str) -> list[str]:
    blocks, current = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks
