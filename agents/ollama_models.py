"""What is publicly known of a few common Ollama models' architecture and default quantization.

The capacity planner (monitoring/capacity.py) prefers what a node reports (`/api/show`); this
catalogue answers for a model that no node holds yet, and the fake Ollama server answers
`/api/show` from it like a real node would. The figures are those of each model's published
configuration (config.json: layers, hidden size, attention heads, key/value heads, context) and
parameter count; the quantization is the one Ollama's library serves under the plain tag.
Pure Python: no Django, so the fake server can import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    family: str
    parameters: int
    layers: int
    embedding: int
    heads: int
    kv_heads: int
    context: int
    quantization: str  # the library's default for the plain tag
    head_dim: int | None = None  # when not embedding / heads

    @property
    def key_length(self) -> int:
        return self.head_dim or self.embedding // self.heads

    @property
    def parameter_size(self) -> str:
        """As Ollama writes it: "8.0B", "70.6B", "3.2B"."""
        return f"{self.parameters / 1e9:.1f}B"


CATALOGUE: dict[str, Architecture] = {
    "llama3.1:8b": Architecture("llama", 8_030_261_248, 32, 4096, 32, 8, 131072, "Q4_K_M"),
    "llama3.1:70b": Architecture("llama", 70_553_706_496, 80, 8192, 64, 8, 131072, "Q4_K_M"),
    "llama3.2:3b": Architecture("llama", 3_212_749_824, 28, 3072, 24, 8, 131072, "Q4_K_M"),
    "llama3.2:1b": Architecture("llama", 1_235_814_400, 16, 2048, 32, 8, 131072, "Q8_0", 64),
    "qwen2.5:7b": Architecture("qwen2", 7_615_616_512, 28, 3584, 28, 4, 32768, "Q4_K_M"),
    "mistral:7b": Architecture("llama", 7_248_023_552, 32, 4096, 32, 8, 32768, "Q4_0"),
    "phi3:3.8b": Architecture("phi3", 3_821_079_552, 32, 3072, 32, 32, 4096, "Q4_0"),
}
# The plain name (and :latest) is the tag the library serves by default.
ALIASES = {
    "llama3.1": "llama3.1:8b",
    "llama3.2": "llama3.2:3b",
    "qwen2.5": "qwen2.5:7b",
    "mistral": "mistral:7b",
    "phi3": "phi3:3.8b",
    "phi3:mini": "phi3:3.8b",
}


def canonical(name: str) -> str:
    name = name.strip().lower()
    if name.endswith(":latest"):
        name = name[: -len(":latest")]
    return ALIASES.get(name, name)


def architecture_of(name: str) -> Architecture | None:
    return CATALOGUE.get(canonical(name))
