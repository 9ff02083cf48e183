"""AutoGen AgentChat: AssistantAgents in a GraphFlow (a chain, and a fan-out joined by one agent).

Agents keep their conversation, so every run gets its own agents and team (the model client,
with its connection pool, is shared). Plain: `team.run`. Streamed: the agents stream their model
calls and the caller consumes `team.run_stream` (tokens included).

`--variant agents`: the same AssistantAgents without a team, chained in code (`agent.run` one
after another, `asyncio.gather` for the fan-out): what AgentChat's agents cost without its
orchestration.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import ModelClientStreamingChunkEvent
from autogen_agentchat.teams import DiGraphBuilder, GraphFlow
from autogen_core.models import ModelFamily, ModelInfo
from autogen_ext.models.openai import OpenAIChatCompletionClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PROMPTS, Workloads, installed, main  # noqa: E402


class AutoGenWorkloads(Workloads):
    def __init__(self, base_url: str, model: str, stream: bool, variant: str) -> None:
        self.stream = stream
        self.chained = variant == "agents"
        self.client = OpenAIChatCompletionClient(
            model=model,
            base_url=base_url,
            api_key="sk-bench",
            max_retries=0,
            model_info=ModelInfo(
                vision=False,
                function_calling=False,
                json_output=False,
                family=ModelFamily.UNKNOWN,
                structured_output=False,
            ),
        )

    def _agent(self, name: str) -> AssistantAgent:
        return AssistantAgent(
            name,
            model_client=self.client,
            system_message="You are a bench agent.",
            model_client_stream=self.stream,
        )

    async def _run(self, team: GraphFlow | AssistantAgent, task: str) -> str:
        if not self.stream:
            result = await team.run(task=task)
        else:
            result = None
            chunks = 0
            async for item in team.run_stream(task=task):
                if isinstance(item, ModelClientStreamingChunkEvent):
                    chunks += 1
                elif isinstance(item, TaskResult):
                    result = item
            if result is None or not chunks:
                raise RuntimeError("the streamed run delivered no tokens or no result")
        return str(result.messages[-1].content)

    async def sequential(self, topic: str) -> str:
        if self.chained:
            previous = ""
            for name, template in zip(
                ("research", "analysis", "writing"), PROMPTS["W1"], strict=True
            ):
                agent = self._agent(name)
                previous = await self._run(agent, template.format(topic=topic, previous=previous))
            return previous
        research, analysis, writing = (self._agent(n) for n in ("research", "analysis", "writing"))
        builder = DiGraphBuilder()
        builder.add_node(research).add_node(analysis).add_node(writing)
        builder.add_edge(research, analysis).add_edge(analysis, writing)
        team = GraphFlow(builder.get_participants(), graph=builder.build())
        return await self._run(team, f"Research this topic: {topic}, analyse, then report.")

    async def fan_out(self, topic: str) -> str:
        if self.chained:
            *templates, merge = PROMPTS["W2"]
            parts = await asyncio.gather(
                *(
                    self._run(self._agent(f"branch_{i}"), t.format(topic=topic))
                    for i, t in enumerate(templates)
                )
            )
            return await self._run(
                self._agent("aggregate"), merge.format(previous="\n\n".join(parts))
            )
        branches = [self._agent(f"branch_{i}") for i in range(4)]
        aggregate = self._agent("aggregate")
        builder = DiGraphBuilder()
        for branch in branches:
            builder.add_node(branch)
        builder.add_node(aggregate)
        for branch in branches:
            builder.add_edge(branch, aggregate)
        team = GraphFlow(builder.get_participants(), graph=builder.build())
        return await self._run(team, f"Study {topic} from four angles, then combine.")

    async def close(self) -> None:
        await self.client.close()


async def build(base_url: str, model: str, stream: bool, variant: str) -> Workloads:
    return AutoGenWorkloads(base_url, model, stream, variant)


if __name__ == "__main__":
    main(
        build,
        lambda: installed("autogen-agentchat", "autogen-core", "autogen-ext", "openai"),
    )
