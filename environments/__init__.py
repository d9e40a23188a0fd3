"""Example environments shipped with Loopline."""
