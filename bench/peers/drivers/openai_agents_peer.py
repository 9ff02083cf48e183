"""The OpenAI Agents SDK: one Agent per step on the Chat Completions model, chained in code.

The SDK has no graph: its documented way to chain agents is code (`Runner.run` one after
another, `asyncio.gather` for a fan-out). Tracing is off (it would export to the vendor).
Plain: `Runner.run`. Streamed: `Runner.run_streamed`, the caller consuming its events.

`agents` below is the SDK's package, not the project's app of that name: this file runs in the
SDK's own virtual environment, from its own folder.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from openai import AsyncOpenAI

from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    Runner,
    set_tracing_disabled,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PROMPTS, Workloads, installed, main  # noqa: E402


class AgentsWorkloads(Workloads):
    def __init__(self, base_url: str, model: str, stream: bool) -> None:
        set_tracing_disabled(True)
        self.stream = stream
        self.client = AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
        chat = OpenAIChatCompletionsModel(model=model, openai_client=self.client)
        names = ("research", "analysis", "writing", *(f"branch_{i}" for i in range(4)), "merge")
        self.agents = {
            name: Agent(
                name=name,
                instructions="You are a bench agent.",
                model=chat,
                model_settings=ModelSettings(),
            )
            for name in names
        }

    async def call(self, name: str, prompt: str) -> str:
        agent = self.agents[name]
        if not self.stream:
            result = await Runner.run(agent, prompt)
            return str(result.final_output)
        streamed = Runner.run_streamed(agent, prompt)
        events = 0
        async for event in streamed.stream_events():
            if event.type == "raw_response_event":
                events += 1
        if not events:
            raise RuntimeError("the streamed run delivered no events")
        return str(streamed.final_output)

    async def sequential(self, topic: str) -> str:
        first, second, third = PROMPTS["W1"]
        findings = await self.call("research", first.format(topic=topic))
        analysis = await self.call("analysis", second.format(previous=findings))
        return await self.call("writing", third.format(previous=analysis))

    async def fan_out(self, topic: str) -> str:
        *branches, merge = PROMPTS["W2"]
        parts = await asyncio.gather(
            *(self.call(f"branch_{i}", t.format(topic=topic)) for i, t in enumerate(branches))
        )
        return await self.call("merge", merge.format(previous="\n\n".join(parts)))

    async def close(self) -> None:
        await self.client.close()


async def build(base_url: str, model: str, stream: bool, variant: str) -> Workloads:
    return AgentsWorkloads(base_url, model, stream)


if __name__ == "__main__":
    main(build, lambda: installed("openai-agents", "openai"))
