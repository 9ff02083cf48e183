"""Three example graphs, as the builder would save them: starting points and test fixtures.

Agent ids are arguments because agents belong to a workspace; the examples only fix the shape.
"""

from __future__ import annotations

from typing import Any


def node(
    node_id: str, node_type: str, along: float, across: float, **config: Any
) -> dict[str, Any]:
    """A node `along` the flow from the start and `across` it (parallel branches side by side).

    The builder draws flows top to bottom, so the distance along the flow is the canvas's y.
    """
    label = node_id.replace("-", " ").capitalize()
    return {
        "id": node_id,
        "type": node_type,
        "label": label,
        "position": {"x": across * 1.5, "y": along * 0.6},
        "config": config,
    }


def edge(source: str, target: str, handle: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"id": f"{source}--{target}", "source": source, "target": target}
    if handle is not None:
        found["source_handle"] = handle
    return found


def text_variable(name: str, description: str = "") -> dict[str, Any]:
    return {"name": name, "type": "string", "description": description}


def topic_input() -> dict[str, Any]:
    return {"fields": [{"name": "topic", "type": "text", "label": "Topic"}]}


def graph(
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]],
    variables: list[dict[str, Any]],
    output: str,
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "nodes": nodes,
        "edges": edges,
        "variables": variables,
        "inputs": topic_input(),
        "output": output,
    }


def agent(
    node_id: str, agent_id: str, along: float, template: str, output: str, across: float = 0
) -> dict[str, Any]:
    return node(
        node_id,
        "agent",
        along,
        across,
        agent_id=agent_id,
        input_template=template,
        output_variable=output,
    )


def research_pipeline(researcher: str, analyst: str, writer: str) -> dict[str, Any]:
    """Research, then analysis, then writing: each agent reads the previous one's variable."""
    return graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            agent("research", researcher, 250, "Research this topic: {{ topic }}", "findings"),
            agent("analysis", analyst, 500, "Analyse these findings:\n{{ findings }}", "analysis"),
            agent("writing", writer, 750, "Write a report from:\n{{ analysis }}", "report"),
            node("end", "end", 1000, 0, output="report"),
        ],
        edges=[
            edge("start", "research"),
            edge("research", "analysis"),
            edge("analysis", "writing"),
            edge("writing", "end"),
        ],
        variables=[
            text_variable("topic", "What to research."),
            text_variable("findings"),
            text_variable("analysis"),
            text_variable("report", "The finished report."),
        ],
        output="report",
    )


def parallel_research(researcher_a: str, researcher_b: str, analyst: str) -> dict[str, Any]:
    """Two researchers at once, their notes joined, then one analyst."""
    return graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            node("fan-out", "parallel", 200, 0),
            agent(
                "research-a", researcher_a, 400, "Research {{ topic }} (sources).", "notes_a", -150
            ),
            agent(
                "research-b", researcher_b, 400, "Research {{ topic }} (critics).", "notes_b", 150
            ),
            node("join", "join", 600, 0, strategy="concatenate", output_variable="notes"),
            agent("analysis", analyst, 800, "Analyse:\n{{ notes }}", "analysis"),
            node("end", "end", 1000, 0, output="analysis"),
        ],
        edges=[
            edge("start", "fan-out"),
            edge("fan-out", "research-a"),
            edge("fan-out", "research-b"),
            edge("research-a", "join"),
            edge("research-b", "join"),
            edge("join", "analysis"),
            edge("analysis", "end"),
        ],
        variables=[
            text_variable("topic"),
            text_variable("notes_a"),
            text_variable("notes_b"),
            text_variable("notes"),
            text_variable("analysis"),
        ],
        output="analysis",
    )


def group_chat_debate(members: list[str], *, max_messages: int = 12) -> dict[str, Any]:
    """A round-robin chat that ends when someone says TERMINATE, or after `max_messages`."""
    termination = {"any_of": [{"text_mention": "TERMINATE"}, {"max_messages": max_messages}]}
    return graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            node(
                "debate",
                "group_chat",
                300,
                0,
                members=list(members),
                speaker_selection="round_robin",
                termination=termination,
                result="transcript",
                output_variable="transcript",
            ),
            node("end", "end", 600, 0, output="transcript"),
        ],
        edges=[edge("start", "debate"), edge("debate", "end")],
        variables=[text_variable("topic"), text_variable("transcript")],
        output="transcript",
    )
