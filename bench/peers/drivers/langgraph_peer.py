"""LangGraph (with langchain-openai's ChatOpenAI) running the workloads as state graphs.

Plain: `graph.ainvoke`. Streamed: the chat model streams and the caller consumes the tokens
(`graph.astream(stream_mode="messages")`), as an application showing them live would.
"""

from __future__ import annotations

import operator
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PROMPTS, Workloads, installed, main  # noqa: E402


class Pipeline(TypedDict, total=False):
    topic: str
    findings: str
    analysis: str
    report: str


class FanOut(TypedDict, total=False):
    topic: str
    parts: Annotated[list[str], operator.add]
    report: str


def _messages(prompt: str) -> list[Any]:
    return [SystemMessage("You are a bench agent."), HumanMessage(prompt)]


class LangGraphWorkloads(Workloads):
    def __init__(self, base_url: str, model: str, stream: bool) -> None:
        self.stream = stream
        self.llm = ChatOpenAI(
            model=model, base_url=base_url, api_key="sk-bench", streaming=stream, max_retries=0
        )
        first, second, third = PROMPTS["W1"]

        async def research(state: Pipeline) -> Pipeline:
            answer = await self.llm.ainvoke(_messages(first.format(topic=state["topic"])))
            return {"findings": str(answer.content)}

        async def analysis(state: Pipeline) -> Pipeline:
            answer = await self.llm.ainvoke(_messages(second.format(previous=state["findings"])))
            return {"analysis": str(answer.content)}

        async def writing(state: Pipeline) -> Pipeline:
            answer = await self.llm.ainvoke(_messages(third.format(previous=state["analysis"])))
            return {"report": str(answer.content)}

        pipeline = StateGraph(Pipeline)
        pipeline.add_node("research", research)
        pipeline.add_node("analysis", analysis)
        pipeline.add_node("writing", writing)
        pipeline.add_edge(START, "research")
        pipeline.add_edge("research", "analysis")
        pipeline.add_edge("analysis", "writing")
        pipeline.add_edge("writing", END)
        self.pipeline = pipeline.compile()

        *branches, merge = PROMPTS["W2"]
        fan_out = StateGraph(FanOut)
        for index, template in enumerate(branches):

            async def branch(state: FanOut, template: str = template) -> FanOut:
                answer = await self.llm.ainvoke(_messages(template.format(topic=state["topic"])))
                return {"parts": [str(answer.content)]}

            fan_out.add_node(f"branch_{index}", branch)
            fan_out.add_edge(START, f"branch_{index}")

        async def aggregate(state: FanOut) -> FanOut:
            prompt = merge.format(previous="\n\n".join(state["parts"]))
            answer = await self.llm.ainvoke(_messages(prompt))
            return {"report": str(answer.content)}

        fan_out.add_node("aggregate", aggregate)
        fan_out.add_edge([f"branch_{i}" for i in range(len(branches))], "aggregate")
        fan_out.add_edge("aggregate", END)
        self.fan_out_graph = fan_out.compile()

    async def _run(self, graph: Any, topic: str) -> str:
        if not self.stream:
            state = await graph.ainvoke({"topic": topic})
            return str(state["report"])
        tokens = 0
        report = ""
        async for mode, payload in graph.astream(
            {"topic": topic}, stream_mode=["messages", "values"]
        ):
            if mode == "messages":
                tokens += 1
            elif "report" in payload:
                report = str(payload["report"])
        if not tokens:
            raise RuntimeError("streamed run delivered no tokens")
        return report

    async def sequential(self, topic: str) -> str:
        return await self._run(self.pipeline, topic)

    async def fan_out(self, topic: str) -> str:
        return await self._run(self.fan_out_graph, topic)


async def build(base_url: str, model: str, stream: bool, variant: str) -> Workloads:
    return LangGraphWorkloads(base_url, model, stream)


if __name__ == "__main__":
    main(build, lambda: installed("langgraph", "langchain-openai", "langchain-core", "openai"))
