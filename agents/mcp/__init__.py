"""MCP (Model Context Protocol) servers a workspace registers, and their tools for agents.

`agents.mcp.client` speaks the protocol (the official `mcp` SDK); `services` and `selectors`
keep the servers; `tools` turns their tools into tools of the agents' registry.
"""
