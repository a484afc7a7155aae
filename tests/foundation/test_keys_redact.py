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
        "hf_abcdefghijklmnop1234",
        "pplx-abcdefghijklmnop1234",
        "0123456789abcdef0123456789abcdef",  # Azure OpenAI: 32 hex
        "aBcD1234eFgH5678iJkL9012mNoP3456",  # Mistral: 32 letters and digits
        "ya29.a0AfB_byC-abcdefghijklmnop",  # a Google OAuth access token
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",  # a bare JWT
    ],
)
def test_scrub_removes_keys(secret: str) -> None:
    text = f"Incorrect API key provided: {secret}. See docs."
    cleaned = scrub(text)
    assert secret not in cleaned
    assert REDACTED in cleaned
    assert cleaned.startswith("Incorrect API key provided: ")


# (text, the secret it holds, what must remain)
SECRETS_IN_CONTEXT = [
    ('{"headers": {"api-key": "0123456789abcdef0123456789abcdef"}}', "0123456789abcdef0123456789abcdef",
     '{"headers": {"api-key": "[REDACTED]"}}'),
    ("api-key: 0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", "api-key: [REDACTED]"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "Authorization: Basic [REDACTED]"),
    ("got Basic dXNlcjpwYXNzd29yZA==, expected Bearer", "dXNlcjpwYXNzd29yZA==", "got Basic [REDACTED], "),
    ("connect https://user:hunter2@proxy.example:8080/v1 failed", "hunter2",
     "connect https://[REDACTED]@proxy.example:8080/v1 failed"),
    ("https://ghp_abcdef123456@github.com/x", "ghp_abcdef123456", "https://[REDACTED]@github.com/x"),
    ('{"api_key": "plainvalue", "model": "gpt-4o"}', "plainvalue",
     '{"api_key": "[REDACTED]", "model": "gpt-4o"}'),
    ("{'secret': 'shh', 'n': 1}", "shh", "{'secret': '[REDACTED]', 'n': 1}"),
    ('{"token": "tok-1"}', "tok-1", '{"token": "[REDACTED]"}'),
    ('{"password": "pw with spaces"}', "pw with spaces", '{"password": "[REDACTED]"}'),
    ('{"access_token": "at1", "refresh_token": "rt1"}', "rt1",
     '{"access_token": "[REDACTED]", "refresh_token": "[REDACTED]"}'),
    ('{"client_secret": "cs1"}', "cs1", '{"client_secret": "[REDACTED]"}'),
    ("{'openaiApiKey': 'camel1'}", "camel1", "{'openaiApiKey': '[REDACTED]'}"),
    ('{\\"api_key\\": \\"escaped1\\"}', "escaped1", '{\\"api_key\\": \\"[REDACTED]'),
    ("password=hunter2 user=bob", "hunter2", "password=[REDACTED] user=bob"),
    ("X-Api-Key: xk-123456", "xk-123456", "X-Api-Key: [REDACTED]"),
    ("Cookie: session=abc123; theme=dark", "abc123", "Cookie: [REDACTED]"),
    ("GET /deployments/d/chat?api-version=1&api-key=azk123", "azk123", "api-version=1&api-key=[REDACTED]"),
    ("?sig=abc%2Fdef&se=2030", "abc%2Fdef", "?sig=[REDACTED]&se=2030"),
    ("Incorrect API key provided: 0123456789abcdef0123456789abcdef.", "0123456789abcdef0123456789abcdef",
     "Incorrect API key provided: [REDACTED]."),
]  # fmt: skip


@pytest.mark.parametrize(("text", "secret", "kept"), SECRETS_IN_CONTEXT)
def test_scrub_removes_key_like_values(text: str, secret: str, kept: str) -> None:
    cleaned = scrub(text)
    assert secret not in cleaned
    assert kept in cleaned


# Text that looks like a key to a careless rule but is information: it must come out unchanged.
NOT_SECRETS = [
    "trace_id=0af7651916cd43dd8448eb211c80319c span_id=00f067aa0ba902b7",
    '{"trace_id": "0af7651916cd43dd8448eb211c80319c"}',
    "traceparent: 00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
    "request id: 5f0a1b2c3d4e5f60718293a4b5c6d7e8",
    "x-request-id: 5f0a1b2c3d4e5f60718293a4b5c6d7e8",
    "Please include the request ID req_5f0a1b2c3d4e5f60718293a4b5c6d7e8 in your message.",
    '{"id": "e5cc70bb28c444948073e77776eb30ef", "object": "error"}',
    "completion cmpl-e5cc70bb28c444948073e77776eb30ef failed",
    "The model `Qwen/Qwen2.5-72B-Instruct` does not exist",
    "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo is overloaded",
    "request 123e4567-e89b-12d3-a456-426614174000 failed",
    "missing required key: messages",
    '"max_tokens": 100, "token_type": "Bearer", "prompt_tokens": 5',
    "This model's maximum context length is 8192 tokens.",
    "Basic authentication is not supported",
    "a risk-assessment of the task-management tool",
    "supercalifragilisticexpialidocious_words_are_long",
    "order 12345678901234567890123456789012345",
    "monkey=banana",
    "mail bob@example.com about http://example.com/a@b",
    "Service Unavailable",
]


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_scrub_keeps_ids_model_names_and_words(text: str) -> None:
    assert scrub(text) == text


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
    text = "x" * 1019 + " " + secret  # a key is a word of its own: "risk-assessment" holds none
    cleaned = scrub(text)
    assert len(cleaned) == 1024
    assert "sk-p" not in cleaned
