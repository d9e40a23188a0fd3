"""Model providers: each turns the normalised conversation into one assistant message."""

from __future__ import annotations

from activities.providers.base import Ask, Completion, ModelProvider, Purpose
from activities.providers.scripted import ScriptedModel
from loopline.extras import missing_extra
from loopline.models import ModelConfig, Provider, Script
from loopline.outbound import OutboundPolicy
from loopline.settings import get_settings

__all__ = [
    "Ask",
    "Completion",
    "MissingExtraError",
    "ModelProvider",
    "Purpose",
    "provider_for",
]


class MissingExtraError(RuntimeError):
    pass


def provider_for(
    config: ModelConfig, api_key: str | None, script: Script | None, outbound: OutboundPolicy
) -> ModelProvider:
    if (reason := missing_extra(config.provider)) is not None:
        raise MissingExtraError(reason)
    if config.provider is Provider.scripted:
        return ScriptedModel(script)
    config = with_default_endpoint(config)
    # A provider's SDK is imported by the first call that needs it: a worker that plays
    # only scripted runs never loads it (openai and anthropic take seconds to import).
    if config.provider.speaks_openai:
        from activities.providers.openai_chat import OpenAIChat

        return OpenAIChat(config, api_key, outbound)
    from activities.providers.anthropic_messages import AnthropicMessages

    return AnthropicMessages(config, api_key, outbound)


def with_default_endpoint(config: ModelConfig) -> ModelConfig:
    """A model without a base_url of its own is called where the deployment's settings say
    its provider is (LOOPLINE_OPENAI_BASE_URL, LOOPLINE_ANTHROPIC_BASE_URL); unset, the SDK
    reads its own variable (OPENAI_BASE_URL, ANTHROPIC_BASE_URL). The client's transport
    checks it against the outbound URL policy like any other."""
    if config.base_url is not None:
        return config
    settings = get_settings()
    defaults = {
        Provider.openai: settings.openai_base_url,
        Provider.anthropic: settings.anthropic_base_url,
    }
    url = defaults.get(config.provider)
    return config if url is None else config.model_copy(update={"base_url": url})
