from __future__ import annotations

import pytest

from otel_model_health.keys import MAX_GATEWAY_LENGTH, MAX_MODEL_LENGTH, MAX_PROVIDER_LENGTH, ModelKey
from otel_model_health.redact import REDACTED, scrub


def test_normalisation() -> None:
    key = ModelKey(provider="  OpenAI ", model=" Qwen/Qwen2.5-72B-Instruct ", gateway=" OpenRouter")
    assert key == ModelKey(provider="openai", model="Qwen/Qwen2.5-72B-Instruct", gateway="openrouter")
    assert key.model == "Qwen/Qwen2.5-72B-Instruct"  # case kept
    assert str(key) == "openai/Qwen/Qwen2.5-72B-Instruct@openrouter"


def test_defaults_and_empty_parts() -> None:
    key = ModelKey(provider="", model="  ")
    assert (key.provider, key.model, key.gateway) == ("unknown", "unknown", "direct")
    assert ModelKey(provider="openai", model="m", gateway=None).gateway == "direct"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Azure", "azure.ai.openai"),
        ("gemini", "gcp.gemini"),
        ("Mistral", "mistral_ai"),
        ("xai", "x_ai"),
        ("anthropic", "anthropic"),
        ("bedrock", "aws.bedrock"),
        ("some-new-provider", "some-new-provider"),
    ],
)
def test_provider_aliases(given: str, expected: str) -> None:
    assert ModelKey(provider=given, model="m").provider == expected


def test_hostile_parts_are_capped_and_printable() -> None:
    key = ModelKey(provider="p" * 10_000, model="m\x00\n" * 100_000, gateway="g" * 10_000)
    assert len(key.provider) == MAX_PROVIDER_LENGTH
    assert len(key.model) == MAX_MODEL_LENGTH
    assert len(key.gateway) == MAX_GATEWAY_LENGTH
    assert key.model.isprintable()


def test_non_string_parts() -> None:
    assert ModelKey(provider="openai", model=123).model == "123"


def test_keys_are_hashable_and_immutable() -> None:
    key = ModelKey(provider="openai", model="gpt-4o")
    assert {key: 1}[ModelKey(provider="OPENAI", model="gpt-4o", gateway="DIRECT")] == 1
    with pytest.raises(AttributeError):
        key.model = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnop1234",
        "sk-ant-api03-abcdefghijklmnop",
        "sk-or-v1-0123456789abcdef",
        "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "AIzaSyA1234567890abcdefghijklmnopq",
        "gsk_abcdefghijklmnop1234",
        "xai-abcdefghijklmnop1234",
    ],
)
def test_scrub_removes_keys(secret: str) -> None:
    text = f"Incorrect API key provided: {secret}. See docs."
    cleaned = scrub(text)
    assert secret not in cleaned
    assert REDACTED in cleaned
    assert cleaned.startswith("Incorrect API key provided: ")


def test_scrub_query_parameters_keeps_names() -> None:
    cleaned = scrub("GET /v1beta/models/gemini:generateContent?key=AIzaXYZsecret123&alt=sse")
    assert "AIzaXYZsecret123" not in cleaned
    assert "key=[REDACTED]" in cleaned
    assert "alt=sse" in cleaned


def test_scrub_caps_length_and_keeps_plain_text() -> None:
    assert scrub("Service Unavailable") == "Service Unavailable"
    assert len(scrub("x" * 100_000)) == 1024


def test_scrub_a_key_straddling_the_cut_leaves_no_prefix() -> None:
    secret = "sk-proj-abcdefghijklmnop1234"
    text = "x" * 1020 + secret
    cleaned = scrub(text)
    assert len(cleaned) == 1024
    assert "sk-p" not in cleaned
