"""Importing an AutoGen Studio team (AutoGen AgentChat "component" JSON) as a workflow.

The aim is the same behaviour as in AutoGen: the same speakers in the same order, the same
message counts, the same tools — and a line in `ImportResult.report` for every way the imported
team still differs. API keys in the file are never imported; tool code in the file never runs.

`components` maps agents, model clients and tools; `terminations` the termination conditions;
`teams` the team types and the graph.
"""

from workflows.services.autogen.teams import (
    autogen_graph_import,
    autogen_import,
    is_autogen_team,
)

__all__ = ["autogen_graph_import", "autogen_import", "is_autogen_team"]
