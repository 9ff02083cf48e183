"""The capacity planner's reads: the demand (agents picked, models entered), the shapes of
those models (the fleet's own reports first), the fleet's room, and the plan
(monitoring/capacity.py holds the formula and the placement)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from agents.models import Agent, OllamaNode, Provider
from agents.ollama_models import canonical
from agents.selectors import latest_versions
from agents.services.nodes import nodes_show
from agents.services.pull import MODEL_NAME
from monitoring.capacity import (
    GB,
    Demand,
    ModelShape,
    NodeRoom,
    Plan,
    kv_is_estimated,
    memory_bytes,
    plan_placement,
    shape_from_catalogue,
    shape_from_node,
    weights_bytes,
)

MAX_MODELS = 30
CONTEXT_CHOICES = (2048, 4096, 8192, 16384, 32768, 65536, 131072)


class PlannerInputError(ValueError):
    pass


@dataclass(frozen=True)
class AgentChoice:
    agent: Agent
    model: str  # "" when its model is not served by an Ollama fleet here
    provider: str


@dataclass(frozen=True)
class ShapeRow:
    shape: ModelShape
    parallel: int
    wanted_by: tuple[str, ...]
    weights: int | None
    memory: int | None  # for all its parallel requests on one node
    kv_estimated: bool


@dataclass
class PlannerResult:
    context: int
    parallel: int
    rows: list[ShapeRow] = field(default_factory=list)
    plan: Plan | None = None
    rooms: list[NodeRoom] = field(default_factory=list)
    nodes_without_memory: list[OllamaNode] = field(default_factory=list)
    nodes_down: list[OllamaNode] = field(default_factory=list)


def agent_choices(workspace_id: UUID) -> list[AgentChoice]:
    """Every agent of the workspace, with its primary model where an Ollama fleet serves it."""
    agents = list(Agent.objects.filter(workspace_id=workspace_id).order_by("name"))
    versions = latest_versions([agent.pk for agent in agents])
    providers = {
        str(p.pk): p
        for p in Provider.objects.filter(workspace_id=workspace_id).only("pk", "name", "kind")
    }
    choices = []
    for agent in agents:
        version = versions.get(agent.pk)
        model = (version.config.get("model") or {}) if version else {}
        provider = providers.get(str(model.get("provider_id")))
        if provider is not None and provider.kind == "ollama" and model.get("model"):
            choices.append(AgentChoice(agent, str(model["model"]), provider.name))
        else:
            choices.append(AgentChoice(agent, "", provider.name if provider else ""))
    return choices


def planner_inputs(
    params: Any, choices: list[AgentChoice]
) -> tuple[dict[str, list[str]], int, int]:
    """({model: [agents wanting it]}, parallel, context) from the form's query; a clear error
    for anything it cannot read."""
    try:
        parallel = int(params.get("parallel") or 4)
        context = int(params.get("context") or 4096)
    except ValueError:
        raise PlannerInputError("Parallel requests and context are whole numbers.") from None
    if not 1 <= parallel <= 256:
        raise PlannerInputError("Parallel requests per model: between 1 and 256.")
    if context not in CONTEXT_CHOICES:
        raise PlannerInputError(
            "Context length: one of " + ", ".join(str(c) for c in CONTEXT_CHOICES) + " tokens."
        )
    wanted: dict[str, list[str]] = {}
    by_id = {str(choice.agent.pk): choice for choice in choices}
    for agent_id in params.getlist("agents"):
        choice = by_id.get(agent_id)
        if choice is None:
            raise PlannerInputError("One of the agents picked is not in this workspace.")
        if not choice.model:
            raise PlannerInputError(f"“{choice.agent.name}” does not use an Ollama model.")
        wanted.setdefault(choice.model, []).append(choice.agent.name)
    text = str(params.get("models") or "")
    for raw in text.replace(",", "\n").splitlines():
        name = raw.strip()
        if not name:
            continue
        if not MODEL_NAME.match(name):
            raise PlannerInputError(f"“{name[:80]}” is not a model name (e.g. llama3.1:8b).")
        wanted.setdefault(name, [])
    if len(wanted) > MAX_MODELS:
        raise PlannerInputError(f"Plan at most {MAX_MODELS} models at once.")
    return wanted, parallel, context


def capacity_plan(
    workspace_id: UUID, wanted: dict[str, list[str]], *, parallel: int, context: int
) -> PlannerResult:
    nodes = list(
        OllamaNode.objects.filter(
            provider__workspace_id=workspace_id, provider__kind="ollama", enabled=True
        ).select_related("provider")
    )
    healthy = [n for n in nodes if n.status == OllamaNode.Status.UP]
    result = PlannerResult(context=context, parallel=parallel)
    result.nodes_down = [n for n in nodes if n.status != OllamaNode.Status.UP]
    result.nodes_without_memory = [n for n in healthy if not n.memory_gb]
    # Each model's shape from a healthy node that holds it (its own report), else the catalogue.
    holder: dict[str, OllamaNode] = {}
    for model in wanted:
        for node in healthy:
            names = {canonical(name): name for name in node.available_models}
            if canonical(model) in names:
                holder[model] = node
                break
    shown = nodes_show([(node, _name_on(node, model)) for model, node in holder.items()])
    demands = []
    for model, agents in wanted.items():
        held_by = holder.get(model)
        if held_by is not None:
            on_node = _name_on(held_by, model)
            shape = shape_from_node(
                model, (held_by.models_info or {}).get(on_node), shown.get((held_by.pk, on_node))
            )
        else:
            shape = shape_from_catalogue(model)
        want = parallel * max(len(agents), 1)
        demands.append(Demand(shape, want, tuple(agents)))
        result.rows.append(
            ShapeRow(
                shape,
                want,
                tuple(agents),
                weights_bytes(shape),
                memory_bytes(shape, context=context, parallel=want),
                kv_is_estimated(shape),
            )
        )
    result.rooms = [
        NodeRoom(
            node.pk,
            f"{node.provider.name} / {node.name}",
            int((node.memory_gb or 0) * GB),
            node.max_parallel,
            frozenset(node.available_models),
        )
        for node in healthy
        if node.memory_gb
    ]
    result.plan = plan_placement(demands, result.rooms, context=context)
    return result


def _name_on(node: OllamaNode, model: str) -> str:
    """The model's name as the node lists it (llama3.2 → llama3.2:latest)."""
    for name in node.available_models:
        if canonical(name) == canonical(model):
            return str(name)
    return model
