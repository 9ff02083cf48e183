"""The node-type registry: what each kind of node accepts as config and how it may be wired.

Execution lives in the engine; this module only describes. A `NodeType` names its palette group,
its config model (a pydantic model derived from `NodeConfig`), how many incoming and outgoing edges
it takes, and — through its config — the branch labels its outgoing edges carry and the agents,
tools, workflows and variables it refers to, so callers can check they exist.

Adding a node type is one `register_node_type(NodeType(...))` call, from any module imported at
start-up; the validator, the builder's palette and the API read the registry, never a fixed list.
That is how later kinds plug in without touching this file, for example:

* a remote A2A agent: `type="a2a_agent"`, group "Agents", a config with the peer's agent-card id
  and an input template whose `references()` returns `Reference("agent", card_id, "config.peer")`
  (or a new kind such as "peer", which callers check against their own list);
* an MCP tool: `type="mcp_tool"`, group "Tools", a config with the server id and tool name whose
  `references()` returns `Reference("tool", f"{server}/{tool}", "config.tool")`.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from workflows.graph.schema import ID_PATTERN, IDENTIFIER_PATTERN, InputField

AgentId = Annotated[str, Field(min_length=1, max_length=64)]
VariableName = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
BranchName = Annotated[str, Field(pattern=ID_PATTERN)]
Template = Annotated[str, Field(max_length=20_000)]

ERROR_BRANCH = "error"
# {{ name }} or {{ name.path.to.field }}; anything else between braces is a typo.
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PLACEHOLDER_BODY = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\s*$")


@dataclass(frozen=True)
class Reference:
    """Something a node names that must exist elsewhere: an agent, tool, workflow or variable."""

    kind: Literal["agent", "tool", "workflow", "variable"]
    id: str
    field: str


def check_template(value: str) -> str:
    """Raises when a `{{ placeholder }}` is malformed, so typos show in the builder, not at run."""
    for match in _PLACEHOLDER.finditer(value):
        if not _PLACEHOLDER_BODY.match(match.group(1)):
            raise ValueError(f"placeholder {match.group(0)!r} is not {{{{ name }}}} or a.b.c")
    if value.count("{{") != value.count("}}"):
        raise ValueError("unbalanced {{ }} in template")
    return value


def _unique(values: list[str], what: str) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError(f"lists each {what} once")
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ErrorPolicy(_Strict):
    action: Literal["fail", "retry", "error_branch", "default"] = "fail"
    retries: int = Field(default=0, ge=0, le=5)
    backoff_s: float = Field(default=1.0, ge=0, le=300)
    default_value: Any = None

    @model_validator(mode="after")
    def _retry_needs_retries(self) -> ErrorPolicy:
        if self.action == "retry" and self.retries == 0:
            raise ValueError("action 'retry' needs retries of 1 to 5")
        return self


class NodeConfig(_Strict):
    """Fields and wiring every node type shares; subclasses add their own."""

    error_policy: ErrorPolicy = Field(default_factory=ErrorPolicy)

    def branches(self) -> list[str] | None:
        """Labels outgoing edges must carry, each wired; None means one unlabelled output."""
        return None

    def references(self) -> list[Reference]:
        return []


class StartConfig(NodeConfig):
    # Input field name → variable that receives it when the run starts.
    input_mapping: dict[str, VariableName] = Field(default_factory=dict)

    def references(self) -> list[Reference]:
        return [
            Reference("variable", variable, f"config.input_mapping.{name}")
            for name, variable in self.input_mapping.items()
        ]


class EndConfig(NodeConfig):
    # A variable name, or a template such as "{{ summary }}\n\n{{ sources }}".
    output: str | None = Field(default=None, min_length=1, max_length=20_000)

    @field_validator("output")
    @classmethod
    def _output(cls, value: str | None) -> str | None:
        if value is not None and "{{" not in value and not re.match(IDENTIFIER_PATTERN, value):
            raise ValueError("give a variable name or a template with {{ placeholders }}")
        return check_template(value) if value is not None else None

    def references(self) -> list[Reference]:
        if self.output is not None and "{{" not in self.output:
            return [Reference("variable", self.output, "config.output")]
        return []


def _output_reference(variable: str | None) -> list[Reference]:
    return [] if variable is None else [Reference("variable", variable, "config.output_variable")]


class AgentNodeConfig(NodeConfig):
    agent_id: AgentId
    instructions: Template = ""
    input_template: Template = "{{ input }}"
    output_variable: VariableName | None = None

    @field_validator("instructions", "input_template")
    @classmethod
    def _templates(cls, value: Any) -> Any:
        return check_template(value)

    def references(self) -> list[Reference]:
        return [
            Reference("agent", self.agent_id, "config.agent_id"),
            *_output_reference(self.output_variable),
        ]


class ParallelConfig(NodeConfig):
    pass


class JoinConfig(NodeConfig):
    strategy: Literal["concatenate", "list", "first_success", "llm_summary"] = "list"
    agent_id: AgentId | None = None
    output_variable: VariableName | None = None

    @model_validator(mode="after")
    def _summary_needs_agent(self) -> JoinConfig:
        if self.strategy == "llm_summary" and self.agent_id is None:
            raise ValueError("strategy 'llm_summary' needs an agent_id to write the summary")
        return self

    def references(self) -> list[Reference]:
        agent = [Reference("agent", self.agent_id, "config.agent_id")] if self.agent_id else []
        return [*agent, *_output_reference(self.output_variable)]


class RouterRule(_Strict):
    route: BranchName
    operator: Literal[
        "contains", "regex", "equals", "json_field_equals", "json_field_gt", "json_field_lt"
    ]
    field: str | None = Field(default=None, min_length=1, max_length=200)
    value: str | int | float | bool | None = None

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: ValidationInfo) -> Any:
        operator = info.data.get("operator")
        if operator in ("contains", "regex") and not isinstance(value, str):
            raise ValueError(f"operator '{operator}' needs a text value")
        if operator in ("json_field_gt", "json_field_lt") and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ValueError(f"operator '{operator}' needs a number")
        if operator == "regex" and isinstance(value, str):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from None
        return value

    @model_validator(mode="after")
    def _json_needs_field(self) -> RouterRule:
        if self.operator.startswith("json_field") and self.field is None:
            raise ValueError(f"operator '{self.operator}' needs the JSON field to compare")
        return self


class RouterConfig(NodeConfig):
    mode: Literal["rules", "llm"] = "rules"
    routes: list[BranchName] = Field(min_length=1, max_length=50)
    rules: list[RouterRule] = Field(default_factory=list, max_length=100)
    default_route: BranchName | None = None
    # The agent that picks a route in "llm" mode.
    agent_id: AgentId | None = None
    input_template: Template = "{{ input }}"

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: Any) -> Any:
        return _unique(value, "route")

    @field_validator("input_template")
    @classmethod
    def _template(cls, value: Any) -> Any:
        return check_template(value)

    @model_validator(mode="after")
    def _consistent(self) -> RouterConfig:
        if self.mode == "rules" and not self.rules:
            raise ValueError("mode 'rules' needs at least one rule")
        if self.mode == "llm" and self.agent_id is None:
            raise ValueError("mode 'llm' needs an agent_id to choose the route")
        for index, rule in enumerate(self.rules, start=1):
            if rule.route not in self.routes:
                raise ValueError(f"rule {index} sends to '{rule.route}', which is not a route")
        if self.default_route is not None and self.default_route not in self.routes:
            raise ValueError(f"default_route '{self.default_route}' is not a route")
        return self

    def branches(self) -> list[str] | None:
        return list(self.routes)

    def references(self) -> list[Reference]:
        return [Reference("agent", self.agent_id, "config.agent_id")] if self.agent_id else []


class TextMentionCondition(_Strict):
    kind: Literal["text_mention"]
    value: str = Field(default="TERMINATE", min_length=1, max_length=200)


class VariablePredicateCondition(_Strict):
    kind: Literal["variable_predicate"]
    variable: VariableName
    operator: Literal["equals", "not_equals", "gt", "lt", "gte", "lte", "contains", "truthy"]
    value: Any = None


LoopCondition = Annotated[
    TextMentionCondition | VariablePredicateCondition, Field(discriminator="kind")
]


class LoopConfig(NodeConfig):
    # Required, without a default: every cycle's bound is something a person chose.
    max_iterations: int = Field(ge=1, le=100)
    condition: LoopCondition | None = None

    def branches(self) -> list[str] | None:
        return ["loop", "done"]

    def references(self) -> list[Reference]:
        if isinstance(self.condition, VariablePredicateCondition):
            return [Reference("variable", self.condition.variable, "config.condition.variable")]
        return []


class AnyOf(_Strict):
    any_of: list[Termination] = Field(min_length=1, max_length=20)


class AllOf(_Strict):
    all_of: list[Termination] = Field(min_length=1, max_length=20)


class MaxMessages(_Strict):
    max_messages: int = Field(ge=1, le=1000)


class TextMention(_Strict):
    text_mention: str = Field(min_length=1, max_length=200)


class TokenBudget(_Strict):
    token_budget: int = Field(ge=1)


class CostBudget(_Strict):
    cost_budget_usd: float = Field(gt=0)


class Timeout(_Strict):
    timeout_s: int = Field(ge=1, le=7 * 24 * 3600)


class HandoffToHuman(_Strict):
    handoff_to_human: Literal[True]


_TERMINATION_KEYS = (
    "any_of",
    "all_of",
    "max_messages",
    "text_mention",
    "token_budget",
    "cost_budget_usd",
    "timeout_s",
    "handoff_to_human",
)


def _termination_tag(value: Any) -> str | None:
    # The one key a condition has names its kind; this keeps errors about that kind alone.
    if isinstance(value, dict):
        keys = [key for key in _TERMINATION_KEYS if key in value]
        return keys[0] if len(keys) == 1 else None
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    return None


Termination = Annotated[
    Annotated[AnyOf, Tag("any_of")]
    | Annotated[AllOf, Tag("all_of")]
    | Annotated[MaxMessages, Tag("max_messages")]
    | Annotated[TextMention, Tag("text_mention")]
    | Annotated[TokenBudget, Tag("token_budget")]
    | Annotated[CostBudget, Tag("cost_budget_usd")]
    | Annotated[Timeout, Tag("timeout_s")]
    | Annotated[HandoffToHuman, Tag("handoff_to_human")],
    Discriminator(
        _termination_tag,
        custom_error_type="termination_kind",
        custom_error_message=(
            "a condition is one of any_of, all_of, max_messages, text_mention, token_budget, "
            "cost_budget_usd, timeout_s, handoff_to_human"
        ),
    ),
]
AnyOf.model_rebuild()
AllOf.model_rebuild()


def termination_is_bounded(condition: Any) -> bool:
    """True when the condition is sure to fire: any_of needs one bounded part, all_of needs all."""
    if isinstance(condition, AnyOf):
        return any(termination_is_bounded(part) for part in condition.any_of)
    if isinstance(condition, AllOf):
        return all(termination_is_bounded(part) for part in condition.all_of)
    return isinstance(condition, MaxMessages | TokenBudget | CostBudget | Timeout)


class SpeakerRule(_Strict):
    after_speaker: AgentId
    when_contains: str | None = Field(default=None, min_length=1, max_length=200)
    next_speaker: AgentId


# A member that is a person, such as AutoGen's UserProxyAgent: "person:<name>". On its turn the
# run waits for that person's answer, which joins the chat like an agent's message.
PERSON_PREFIX = "person:"


def is_person(member: str) -> bool:
    return member.startswith(PERSON_PREFIX)


class GroupChatConfig(NodeConfig):
    # One member is a chat too: it keeps answering until the termination fires.
    members: list[AgentId] = Field(min_length=1, max_length=20)
    speaker_selection: Literal["round_robin", "llm_selector", "rules"] = "round_robin"
    selector_agent_id: AgentId | None = None
    # llm_selector only. False: whoever spoke last is not a candidate for the next turn.
    allow_repeated_speaker: bool = True
    # llm_selector only: the selector's whole request, with {roles}, {participants} and
    # {history} filled in each turn (AutoGen's selector_prompt). Empty: the chat so far.
    selector_prompt: Template | None = Field(default=None, min_length=1)
    # llm_selector only: asks again, saying what was wrong, when no single member is named.
    max_selector_attempts: int = Field(default=1, ge=1, le=10)
    speaker_rules: list[SpeakerRule] = Field(default_factory=list, max_length=100)
    termination: Termination
    # What the chat hands on: its last message, or the whole conversation with its speakers.
    result: Literal["last_message", "transcript"] = "last_message"
    # AutoGen counts the task as the chat's first message: max_messages includes it, and a
    # termination text in the task itself ends the chat before anyone speaks.
    task_counts_as_message: bool = False
    output_variable: VariableName | None = None

    @field_validator("members")
    @classmethod
    def _members(cls, value: Any) -> Any:
        for member in value:
            if is_person(member) and not member[len(PERSON_PREFIX) :].strip():
                raise ValueError(f"a person member is written {PERSON_PREFIX}<name>")
        return _unique(value, "member")

    @model_validator(mode="after")
    def _consistent(self) -> GroupChatConfig:
        if self.speaker_selection == "llm_selector" and self.selector_agent_id is None:
            raise ValueError("speaker_selection 'llm_selector' needs a selector_agent_id")
        if self.speaker_selection == "rules" and not self.speaker_rules:
            raise ValueError("speaker_selection 'rules' needs at least one speaker rule")
        for index, rule in enumerate(self.speaker_rules, start=1):
            for name in (rule.after_speaker, rule.next_speaker):
                if name not in self.members:
                    raise ValueError(f"speaker rule {index} names '{name}', who is not a member")
        if not termination_is_bounded(self.termination):
            # text_mention or a human hand-off may never happen; a chat must end regardless.
            raise ValueError(
                "termination may never fire: include max_messages, token_budget, "
                "cost_budget_usd or timeout_s (directly or under any_of)"
            )
        return self

    def references(self) -> list[Reference]:
        found = [
            Reference("agent", member, f"config.members[{index}]")
            for index, member in enumerate(self.members)
            if not is_person(member)
        ]
        if self.selector_agent_id:
            found.append(Reference("agent", self.selector_agent_id, "config.selector_agent_id"))
        return [*found, *_output_reference(self.output_variable)]


class HandoffConfig(NodeConfig):
    agents: list[AgentId] = Field(min_length=1, max_length=20)
    start_agent: AgentId
    context_variables: list[VariableName] = Field(default_factory=list, max_length=50)
    max_handoffs: int = Field(default=10, ge=1, le=100)
    # None: the swarm ends when an agent answers without handing off. Set (AutoGen's Swarm):
    # the agent holding the conversation keeps it until it hands off, and the swarm ends when
    # this condition holds, checked after every message.
    termination: Termination | None = None
    # As for group chats: the task is the first message max_messages counts.
    task_counts_as_message: bool = False
    output_variable: VariableName | None = None

    @field_validator("agents")
    @classmethod
    def _agents(cls, value: Any) -> Any:
        return _unique(value, "agent")

    @model_validator(mode="after")
    def _start_is_member(self) -> HandoffConfig:
        if self.start_agent not in self.agents:
            raise ValueError(f"start_agent '{self.start_agent}' is not one of the agents")
        if self.termination is not None and not termination_is_bounded(self.termination):
            raise ValueError(
                "termination may never fire: include max_messages, token_budget, "
                "cost_budget_usd or timeout_s (directly or under any_of)"
            )
        return self

    def references(self) -> list[Reference]:
        return [
            *(
                Reference("agent", agent, f"config.agents[{index}]")
                for index, agent in enumerate(self.agents)
            ),
            *(
                Reference("variable", name, f"config.context_variables[{index}]")
                for index, name in enumerate(self.context_variables)
            ),
            *_output_reference(self.output_variable),
        ]


class VoteConfig(NodeConfig):
    voters: list[AgentId] = Field(min_length=2, max_length=50)
    question: Template = Field(min_length=1)
    options: list[str] = Field(default_factory=list, max_length=50)
    free_form: bool = False
    quorum: Literal["majority", "unanimous", "k_of_n"] = "majority"
    k: int | None = Field(default=None, ge=1)
    tie_policy: Literal["first_option", "no_decision", "chair"] = "no_decision"
    chair_agent_id: AgentId | None = None
    output_variable: VariableName | None = None

    @field_validator("voters")
    @classmethod
    def _voters(cls, value: Any) -> Any:
        return _unique(value, "voter")

    @field_validator("question")
    @classmethod
    def _question(cls, value: Any) -> Any:
        return check_template(value)

    @model_validator(mode="after")
    def _consistent(self) -> VoteConfig:
        if self.free_form and self.options:
            raise ValueError("give options or set free_form, not both")
        if not self.free_form and len(self.options) < 2:
            raise ValueError("give at least two options, or set free_form")
        _unique(self.options, "option")
        if self.quorum == "k_of_n":
            if self.k is None:
                raise ValueError("quorum 'k_of_n' needs k")
            if self.k > len(self.voters):
                raise ValueError(f"k is {self.k} but there are only {len(self.voters)} voters")
        elif self.k is not None:
            raise ValueError("k only applies to quorum 'k_of_n'")
        if self.tie_policy == "chair" and self.chair_agent_id is None:
            raise ValueError("tie_policy 'chair' needs a chair_agent_id")
        if self.tie_policy == "first_option" and self.free_form:
            raise ValueError("tie_policy 'first_option' needs options")
        return self

    def references(self) -> list[Reference]:
        found = [
            Reference("agent", voter, f"config.voters[{index}]")
            for index, voter in enumerate(self.voters)
        ]
        if self.chair_agent_id:
            found.append(Reference("agent", self.chair_agent_id, "config.chair_agent_id"))
        return [*found, *_output_reference(self.output_variable)]


class HumanConfig(NodeConfig):
    prompt: Template = Field(min_length=1)
    kind: Literal["input", "approval"] = "input"
    field: InputField | None = None
    timeout_s: int | None = Field(default=None, ge=1, le=30 * 24 * 3600)
    on_timeout: Literal["approve", "reject", "fail", "default_value"] = "fail"
    default_value: Any = None
    output_variable: VariableName | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: Any) -> Any:
        return check_template(value)

    @model_validator(mode="after")
    def _consistent(self) -> HumanConfig:
        if self.on_timeout in ("approve", "reject") and self.kind != "approval":
            raise ValueError(f"on_timeout '{self.on_timeout}' only applies to kind 'approval'")
        if self.on_timeout == "default_value" and self.default_value is None:
            raise ValueError("on_timeout 'default_value' needs a default_value")
        if self.kind == "approval" and self.field is not None:
            raise ValueError("an approval asks yes or no; remove the input field")
        return self

    def branches(self) -> list[str] | None:
        return ["approved", "rejected"] if self.kind == "approval" else None

    def references(self) -> list[Reference]:
        return _output_reference(self.output_variable)


class ToolConfig(NodeConfig):
    tool: str = Field(min_length=1, max_length=200)
    # Values may hold {{ placeholders }}, rendered when the node runs.
    arguments: dict[str, Any] = Field(default_factory=dict)
    output_variable: VariableName | None = None

    def references(self) -> list[Reference]:
        return [
            Reference("tool", self.tool, "config.tool"),
            *_output_reference(self.output_variable),
        ]


class SubworkflowConfig(NodeConfig):
    workflow_id: str = Field(min_length=1, max_length=64)
    version: Literal["latest_published"] | Annotated[int, Field(ge=1)] = "latest_published"
    # Child input → template over this run's variables; child output → variable here.
    input_mapping: dict[str, Template] = Field(default_factory=dict)
    output_mapping: dict[str, VariableName] = Field(default_factory=dict)
    # Bounds recursion when a workflow (indirectly) calls itself.
    max_depth: int = Field(default=3, ge=1, le=5)

    @field_validator("input_mapping")
    @classmethod
    def _templates(cls, value: dict[str, str]) -> dict[str, str]:
        for template in value.values():
            check_template(template)
        return value

    def references(self) -> list[Reference]:
        return [
            Reference("workflow", self.workflow_id, "config.workflow_id"),
            *(
                Reference("variable", variable, f"config.output_mapping.{child}")
                for child, variable in self.output_mapping.items()
            ),
        ]


@dataclass(frozen=True)
class NodeType:
    type: str
    label: str
    # The builder palette's section: "Agents", "Flow", "Teams", "Humans" or "Tools" so far.
    group: str
    description: str
    # `builtins.` because the field `type` above shadows the builtin inside this class body.
    config_model: builtins.type[NodeConfig]
    min_in: int = 0
    max_in: int | None = None
    min_out: int = 0
    max_out: int | None = None
    # Whether one output may feed several edges; elsewhere that would be an ambiguous next step.
    fan_out: bool = False
    # What a node dropped from the builder's palette starts with: valid where nothing needs
    # choosing, otherwise as close as possible, so the validator asks only for the choices left.
    default_config: Mapping[str, Any] = field(default_factory=dict)

    def branches(self, config: NodeConfig) -> list[str] | None:
        return config.branches()

    def references(self, config: NodeConfig) -> list[Reference]:
        return config.references()


NODE_TYPES: dict[str, NodeType] = {}


def register_node_type(node_type: NodeType) -> NodeType:
    if node_type.type in NODE_TYPES:
        raise ValueError(f"node type '{node_type.type}' is already registered")
    NODE_TYPES[node_type.type] = node_type
    return node_type


for _node_type in (
    NodeType(
        "start",
        "Start",
        "Flow",
        "Where a run begins; maps run inputs to variables.",
        StartConfig,
        min_in=0,
        max_in=0,
        min_out=1,
    ),
    NodeType(
        "end",
        "End",
        "Flow",
        "Where a run finishes; names its output.",
        EndConfig,
        max_out=0,
    ),
    NodeType(
        "agent",
        "Agent",
        "Agents",
        "One turn of one agent.",
        AgentNodeConfig,
        default_config={"agent_id": ""},
    ),
    NodeType(
        "parallel",
        "Parallel",
        "Flow",
        "Runs every outgoing branch at once.",
        ParallelConfig,
        min_out=2,
        fan_out=True,
    ),
    NodeType(
        "join",
        "Join",
        "Flow",
        "Waits for parallel branches and merges their results.",
        JoinConfig,
        min_in=2,
        default_config={"strategy": "concatenate"},
    ),
    NodeType(
        "router",
        "Router",
        "Flow",
        "Sends the run down one route, by rules or by an agent.",
        RouterConfig,
        default_config={
            "routes": ["yes", "no"],
            "rules": [{"route": "yes", "operator": "contains", "value": "yes"}],
            "default_route": "no",
        },
    ),
    NodeType(
        "loop",
        "Loop",
        "Flow",
        "Repeats its 'loop' branch until a condition or its limit.",
        LoopConfig,
        default_config={
            "max_iterations": 3,
            "condition": {"kind": "text_mention", "value": "TERMINATE"},
        },
    ),
    NodeType(
        "group_chat",
        "Group chat",
        "Teams",
        "Agents take turns in one conversation.",
        GroupChatConfig,
        default_config={"members": [], "termination": {"max_messages": 10}},
    ),
    NodeType(
        "handoff",
        "Hand-off swarm",
        "Teams",
        "Agents pass the conversation to each other.",
        HandoffConfig,
        default_config={"agents": [], "start_agent": ""},
    ),
    NodeType(
        "vote",
        "Vote",
        "Teams",
        "Agents vote; a quorum decides.",
        VoteConfig,
        default_config={"voters": [], "question": "{{ input }}", "options": ["yes", "no"]},
    ),
    NodeType(
        "human",
        "Human",
        "Humans",
        "Asks a person for input or an approval.",
        HumanConfig,
        default_config={"prompt": "Please review:\n\n{{ last }}", "kind": "approval"},
    ),
    NodeType(
        "tool",
        "Tool",
        "Tools",
        "Calls one tool with templated arguments.",
        ToolConfig,
        default_config={"tool": "current_time"},
    ),
    NodeType(
        "subworkflow",
        "Sub-workflow",
        "Flow",
        "Runs another workflow as one step.",
        SubworkflowConfig,
        default_config={"workflow_id": ""},
    ),
):
    register_node_type(_node_type)
