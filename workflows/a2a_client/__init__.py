"""Calls to remote A2A agents from runs (the "Remote agent (A2A)" node's Django side).

`DjangoRemoteAgentRunner` is the engine's `RemoteAgentRunner`: it loads the saved credential,
remembers each step's remote task in `RemoteTask`, and holds one conversation per call
(`conversation.RemoteConversation`, through the a2a-sdk's client).
"""

from workflows.a2a_client.runner import DjangoRemoteAgentRunner

__all__ = ["DjangoRemoteAgentRunner"]
