"""Every side effect of a run: one module per concern, each a class of activities."""
