"""What the API said when it refused a CLI's request, as one line a person reads."""

from __future__ import annotations

import json


def refusal_detail(status: int, body: bytes) -> str:
    """The refusal's detail: a validation error's fields and messages, or its text; a 401
    says how to pass a key."""
    try:
        detail = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        detail = body.decode(errors="replace")
    if isinstance(detail, list):
        detail = "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg')}"
            for item in detail
        )
    if status == 401:
        detail = f"{detail} (pass --api-key or set LOOPLINE_API_KEY)"
    return str(detail)
