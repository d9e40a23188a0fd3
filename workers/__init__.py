"""Processes: the worker, the API server, the embedded stack and the CLI that starts them."""
