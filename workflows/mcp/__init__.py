"""The studio's MCP endpoint: published workflows offered as MCP tools (see `server`)."""
