"""Wire protocols: each turns a normalized reply plan into a provider's exact responses."""

from . import anthropic, ollama, openai
from .base import ChatRequest, Message, ReplyPlan, RequestError, ToolCall

__all__ = [
    "ChatRequest",
    "Message",
    "ReplyPlan",
    "RequestError",
    "ToolCall",
    "anthropic",
    "ollama",
    "openai",
]
