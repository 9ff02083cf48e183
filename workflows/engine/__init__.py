"""The run engine: pure async Python that walks a workflow graph in durable, replayable steps.

Persistence, model calls, tools, sub-workflows, live deltas and the clock are injected through the
protocols in `contracts`; nothing here imports Django, Celery or Channels.
"""

from workflows.engine.contracts import (
    AgentReply,
    AgentRunner,
    Control,
    EventDraft,
    LeaseLost,
    LiveSink,
    RunFailed,
    RunSnapshot,
    RunStore,
    RunWaiting,
    StepRecord,
    SubworkflowRunner,
    ToolRunner,
)
from workflows.engine.engine import CANCELLED_REASON, Engine, RunOutcome
from workflows.engine.nodes.human import HUMAN_TIMEOUT, is_approval
from workflows.engine.nodes.teams import HUMAN_MARKER, NO_DECISION
from workflows.engine.templating import Rendered, render

__all__ = [
    "CANCELLED_REASON",
    "HUMAN_MARKER",
    "HUMAN_TIMEOUT",
    "NO_DECISION",
    "AgentReply",
    "AgentRunner",
    "Control",
    "Engine",
    "EventDraft",
    "LeaseLost",
    "LiveSink",
    "Rendered",
    "RunFailed",
    "RunOutcome",
    "RunSnapshot",
    "RunStore",
    "RunWaiting",
    "StepRecord",
    "SubworkflowRunner",
    "ToolRunner",
    "is_approval",
    "render",
]
