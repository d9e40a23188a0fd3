"""The HTTP facade: routers translate requests into calls of one service layer."""
