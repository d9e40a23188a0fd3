"""Servers that tests start as separate processes: remote environments' MCP and HTTP servers."""
