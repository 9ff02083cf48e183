"""The floor: the workloads as bare HTTP calls with aiohttp, no framework (the project's venv)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PROMPTS, Workloads, installed, main  # noqa: E402


class Raw(Workloads):
    def __init__(self, base_url: str, model: str, stream: bool) -> None:
        self.url = f"{base_url}/chat/completions"
        self.model = model
        self.stream = stream
        self.session = aiohttp.ClientSession(
            headers={"Authorization": "Bearer sk-bench"},
            connector=aiohttp.TCPConnector(limit=0),
        )

    async def call(self, prompt: str) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": "You are a bench agent."},
                {"role": "user", "content": prompt},
            ],
            "stream": self.stream,
        }
        async with self.session.post(self.url, json=body) as response:
            response.raise_for_status()
            if not self.stream:
                return str((await response.json())["choices"][0]["message"]["content"])
            parts = []
            async for line in response.content:
                text = line.strip()
                if not text.startswith(b"data:"):
                    continue
                data = text[5:].strip()
                if data == b"[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("choices"):
                    parts.append(chunk["choices"][0].get("delta", {}).get("content") or "")
            return "".join(parts)

    async def close(self) -> None:
        await self.session.close()

    async def sequential(self, topic: str) -> str:
        previous = ""
        for template in PROMPTS["W1"]:
            previous = await self.call(template.format(topic=topic, previous=previous))
        return previous

    async def fan_out(self, topic: str) -> str:
        *branches, merge = PROMPTS["W2"]
        parts = await asyncio.gather(*(self.call(b.format(topic=topic)) for b in branches))
        return await self.call(merge.format(previous="\n\n".join(parts)))


async def build(base_url: str, model: str, stream: bool, variant: str) -> Workloads:
    return Raw(base_url, model, stream)


if __name__ == "__main__":
    main(build, lambda: installed("aiohttp"))
