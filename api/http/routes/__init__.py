"""The native API under /v1, one router per resource."""
