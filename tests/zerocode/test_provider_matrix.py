"""Every SDK of the zero-code matrix, at its real host: the provider name our transport gives it.

Each SDK gets an instrumented client whose inner transport forwards to the simulated provider, so our
transport sees the request exactly as sent to api.groq.com, *.openai.azure.com ... (host, path, headers)
and the simulated provider answers it. Vertex AI needs Google credentials and Cohere's wire is not read
(docs/zero-code.md); their hosts are checked in the host table test below."""

from __future__ import annotations

from typing import Any

import anthropic
import groq
import httpx
import httpx2
import openai
import pytest
from google import genai
from google.genai import types
from kit import ListRecorder, Telemetry
from mistralai.client import Mistral

from otel_model_health.hosts import HostResolver, route_key
from otel_model_health.instrument.transport import instrument_client
from otel_model_health.testing import SimulatedProvider

HELLO: Any = [{"role": "user", "content": "Say hello."}]


def _forwarding(module: Any, sim: SimulatedProvider, **client_args: Any) -> Any:
    """A client of ``module`` whose requests reach ``sim`` whatever host they name."""
    inner = module.HTTPTransport()
    target = module.URL(sim.base_url)

    class Forward(module.BaseTransport):  # type: ignore[misc,name-defined]
        def handle_request(self, request: Any) -> Any:
            request.url = request.url.copy_with(scheme="http", host=target.host, port=target.port)
            return inner.handle_request(request)

    return module.Client(transport=Forward(), **client_args)


@pytest.mark.integration
def test_each_sdk_at_its_real_host_names_its_provider(
    sim: SimulatedProvider, telemetry: Telemetry[ListRecorder]
) -> None:
    def client(module: Any = httpx2, **args: Any) -> Any:
        return instrument_client(_forwarding(module, sim, **args), **telemetry.options())

    key = "sk-test"
    openai.OpenAI(api_key=key, http_client=client()).chat.completions.create(model="gpt-4o", messages=HELLO)
    openai.AzureOpenAI(
        api_key=key,
        azure_endpoint="https://corp.openai.azure.com",
        api_version="2024-10-21",
        http_client=client(),
    ).chat.completions.create(model="gpt-4o-prod", messages=HELLO)
    for base, model in (("https://api.deepseek.com/v1", "deepseek-chat"), ("https://api.x.ai/v1", "grok-4")):
        openai.OpenAI(api_key=key, base_url=base, http_client=client()).chat.completions.create(
            model=model, messages=HELLO
        )
    anthropic.Anthropic(api_key=key, http_client=client()).messages.create(
        model="claude-test", max_tokens=32, messages=HELLO
    )
    genai.Client(api_key=key, http_options=types.HttpOptions(httpx_client=client())).models.generate_content(
        model="gemini-2.5-flash", contents="Say hello."
    )
    Mistral(api_key=key, client=client()).chat.complete(model="mistral-small-latest", messages=HELLO)
    groq.Groq(api_key=key, http_client=client(httpx)).chat.completions.create(
        model="llama-3.3-70b-versatile", messages=HELLO
    )
    seen = {
        (
            s.attributes["gen_ai.request.model"],
            s.attributes["gen_ai.provider.name"],
            s.attributes["server.address"],
        )  # type: ignore[index]
        for s in telemetry.model_spans()
    }
    assert seen == {
        ("gpt-4o", "openai", "api.openai.com"),
        ("gpt-4o-prod", "azure.ai.openai", "corp.openai.azure.com"),
        ("deepseek-chat", "deepseek", "api.deepseek.com"),
        ("grok-4", "x_ai", "api.x.ai"),
        ("claude-test", "anthropic", "api.anthropic.com"),
        ("gemini-2.5-flash", "gcp.gemini", "generativelanguage.googleapis.com"),
        ("mistral-small-latest", "mistral_ai", "api.mistral.ai"),
        ("llama-3.3-70b-versatile", "groq", "api.groq.com"),
    }
    assert all(s.attributes["model_health.outcome"] == "success" for s in telemetry.model_spans())  # type: ignore[index]


@pytest.mark.parametrize(
    ("host", "provider"),
    [
        ("us-central1-aiplatform.googleapis.com", "gcp.vertex_ai"),  # regional: a dash, not a dot
        ("aiplatform.googleapis.com", "gcp.vertex_ai"),  # global
        ("europe-west4-aiplatform.googleapis.com.", "gcp.vertex_ai"),
        ("api.cohere.com", "cohere"),
        ("my-resource.services.ai.azure.com", "azure.ai.openai"),
    ],
)
def test_hosts_without_an_sdk_run_here(host: str, provider: str) -> None:
    assert route_key(HostResolver(), host, "m", fallback_provider="openai").provider == provider
