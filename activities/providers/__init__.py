"""Model providers: each turns the normalised conversation into one assistant message."""

from __future__ import annotations

from activities.providers.base import Completion, ModelProvider
from activities.providers.scripted import ScriptedModel
from loopline.models import SCRIPTED_MODEL, RunSpec

__all__ = ["Completion", "ModelProvider", "UnknownModelError", "provider_for"]


class UnknownModelError(LookupError):
    pass


def provider_for(spec: RunSpec) -> ModelProvider:
    if spec.model == SCRIPTED_MODEL and spec.script is not None:
        return ScriptedModel(spec.script)
    raise UnknownModelError(f"model {spec.model!r} is not served by this worker")
