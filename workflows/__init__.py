"""Deterministic orchestration only: no I/O, clocks or randomness; side effects are activities."""
