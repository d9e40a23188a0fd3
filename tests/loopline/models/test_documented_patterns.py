"""The patterns the OpenAPI document gives clients say exactly what validation accepts, so a
client that follows the document is never refused for the shape of a URL or of base64."""

from __future__ import annotations

import base64
import binascii
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from loopline.models import HttpUrlText, ModelConfig, RunPatch, RunStatus
from loopline.models.config import HTTP_URL_PATTERN
from loopline.models.http import BASE64_PATTERN


class Hook(BaseModel):
    url: HttpUrlText


@pytest.mark.parametrize(
    "url",
    ["http://a", "https://example.com:443/p?q=1#f", "http://[::1]:8080/", "http://u:p@host/x"],
)
def test_urls_with_a_host_are_taken(url: str) -> None:
    assert Hook(url=url).url == url
    assert re.fullmatch(HTTP_URL_PATTERN, url)


@pytest.mark.parametrize(
    "url", ["http://", "http://:80", "http://a:99999", "http://a:0", "http://a b", "ftp://a"]
)
def test_urls_without_a_host_are_refused_in_words(url: str) -> None:
    with pytest.raises(ValidationError, match="not an http\\(s\\) URL with a host"):
        Hook(url=url)
    assert not re.fullmatch(HTTP_URL_PATTERN, url)


def test_model_base_url_documents_the_pattern_it_checks() -> None:
    schema = ModelConfig.model_json_schema()["properties"]["base_url"]
    assert {"type": "string", "pattern": HTTP_URL_PATTERN, "maxLength": 2000} in schema["anyOf"]


def _decodes(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


@given(st.text(alphabet="AZaz09+/=-_ \n\u00e9", max_size=12))
def test_what_the_base64_pattern_takes_decodes(text: str) -> None:
    # The decoder takes a little more ("0000="); uploads are held to the pattern.
    assert not re.fullmatch(BASE64_PATTERN, text) or _decodes(text)


@given(st.binary(max_size=40))
def test_base64_pattern_takes_every_encoding(data: bytes) -> None:
    assert re.fullmatch(BASE64_PATTERN, base64.b64encode(data).decode())


def test_run_patch_documents_only_the_statuses_a_caller_may_set() -> None:
    schema = RunPatch.model_json_schema()["properties"]["status"]
    documented = next(option for option in schema["anyOf"] if "enum" in option)
    assert documented["enum"] == [RunStatus.cancelled.value, RunStatus.completed.value]
