"""Optional extras: providers whose SDK clients need packages a plain install lacks."""

from __future__ import annotations

import importlib.util

from loopline.models import Provider

# provider → (module its client imports, loopline extra that installs it)
EXTRAS: dict[Provider, tuple[str, str]] = {
    Provider.aws_bedrock: ("boto3", "bedrock"),
    Provider.gcp: ("google.auth", "vertex"),
}


def missing_extra(provider: Provider) -> str | None:
    """Why `provider` cannot be used in this installation, or None if it can."""
    if provider not in EXTRAS:
        return None
    module, extra = EXTRAS[provider]
    if _installed(module):
        return None
    return (
        f"provider {provider.value!r} needs the optional extra '{extra}': "
        f"pip install 'loopline[{extra}]' on the API and the workers"
    )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False
