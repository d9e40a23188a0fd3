"""Model names as the hosted products write them: bare (`claude-opus-4-5`, `gpt-4o`), which
Loopline gives the provider of their family, or already `provider/model`."""

from __future__ import annotations

from api.services.errors import Invalid
from loopline.models import SCRIPTED_MODEL, ModelConfig, Provider, parse_model

# Model names the hosted products take without a provider, by their family's prefix.
PROVIDER_PREFIXES: tuple[tuple[str, Provider], ...] = (
    ("claude", Provider.anthropic),
    ("gpt", Provider.openai),
    ("chatgpt", Provider.openai),
    ("o1", Provider.openai),
    ("o3", Provider.openai),
    ("o4", Provider.openai),
)


def _any_case(prefix: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in prefix)


# What `qualified_model` then `parse_model` take, for API documents and their clients (ECMA
# regex: no inline flags, so the known prefixes are spelled in either case).
MODEL_NAME_PATTERN = (
    rf"^({SCRIPTED_MODEL}"
    rf"|({'|'.join(p.value for p in Provider)})/.+"
    rf"|({'|'.join(_any_case(prefix) for prefix, _ in PROVIDER_PREFIXES)})[^/]*)$"
)


def qualified_model(name: str, loc: list[str | int] | None = None) -> str:
    """`name` as Loopline's `provider/model`; names that already say their provider pass."""
    if "/" in name or name == SCRIPTED_MODEL:
        return name
    for prefix, provider in PROVIDER_PREFIXES:
        if name.lower().startswith(prefix):
            return f"{provider.value}/{name}"
    raise Invalid(
        loc or ["body", "model"],
        f"cannot tell the provider of model {name!r}: write it as 'provider/model' "
        "(e.g. 'openai/gpt-4o', 'custom/llama-3'); bare names are known for claude-*, gpt-* "
        "and o1/o3/o4 models",
    )


def default_endpoint(config: ModelConfig, loc: list[str | int]) -> ModelConfig:
    """A `custom` model without a base_url (the rollout API's defaults) is not a server of
    one's own: it is the model of the provider its name says (`gpt-4o`, `openai/gpt-4o`),
    called at that provider's default endpoint. `loc` is the model's name in the request."""
    if config.provider is not Provider.custom or config.base_url is not None:
        return config
    try:
        named = parse_model(qualified_model(config.model, loc))
    except ValueError as error:
        raise Invalid(loc, str(error)) from None
    except Invalid as error:
        raise Invalid(
            loc,
            f"{error.message}; or give base_url, the address of your own OpenAI-compatible "
            "server (provider custom)",
        ) from None
    if named.provider is Provider.custom:
        raise Invalid(loc, f"model {config.model!r} is a custom server's: give its base_url")
    return config.model_copy(update={"provider": named.provider, "model": named.model})
