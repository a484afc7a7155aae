"""A gateway that routes each request to the first healthy model: gpt-4o, then Claude, then a local model.

Self-contained: two simulated providers on 127.0.0.1 stand in for the cloud APIs and the local server, and
the script scripts their outages one after another:

    python examples/fallback_gateway.py

``configure(enforce=True)`` makes every instrumented client refuse calls to a model whose breaker is OPEN
(or rate-limited) before any network I/O; ``call_with_fallback`` asks ``registry.choose`` for the first
candidate available now and moves on when a call is refused or fails with one of ``fall_back_on``. When
every candidate is down it raises ``NoModelAvailableError`` with the soonest time one may be tried again.
See docs/enforcement.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import anthropic
import openai

import otel_model_health as omh
from otel_model_health import ModelKey, NoModelAvailableError, call_with_fallback, instrument_client
from otel_model_health.testing import Fault, SimulatedProvider

MESSAGES: Any = [{"role": "user", "content": "Say hello."}]
# Each client names its gateway, so each model has its own key in the registry (and in choose()).
GPT = ModelKey(provider="openai", model="gpt-4o", gateway="cloud")
CLAUDE = ModelKey(provider="anthropic", model="claude-sonnet-4-6", gateway="cloud")
LOCAL = ModelKey(provider="openai", model="llama-3.1-8b", gateway="local")
CANDIDATES = (GPT, CLAUDE, LOCAL)


def make_callers(cloud: SimulatedProvider, local: SimulatedProvider) -> dict[ModelKey, Callable[[], str]]:
    # max_retries=0: the gateway falls back to another model instead of retrying a failing one.
    gpt = openai.OpenAI(
        base_url=cloud.openai_base_url,
        api_key="sk-example",
        max_retries=0,
        http_client=instrument_client(openai.DefaultHttpxClient(), gateway="cloud"),
    )
    claude = anthropic.Anthropic(
        base_url=cloud.anthropic_base_url,
        api_key="sk-ant-example",
        max_retries=0,
        http_client=instrument_client(anthropic.DefaultHttpxClient(), gateway="cloud"),
    )
    llama = openai.OpenAI(
        base_url=local.openai_base_url,
        api_key="unused",
        max_retries=0,
        http_client=instrument_client(openai.DefaultHttpxClient(), gateway="local"),
    )

    def ask_gpt() -> str:
        return (
            gpt.chat.completions.create(model=GPT.model, messages=MESSAGES).choices[0].message.content or ""
        )

    def ask_claude() -> str:
        message = claude.messages.create(model=CLAUDE.model, max_tokens=20, messages=MESSAGES)
        return "".join(block.text for block in message.content if block.type == "text")

    def ask_llama() -> str:
        completion = llama.chat.completions.create(model=LOCAL.model, messages=MESSAGES)
        return completion.choices[0].message.content or ""

    return {GPT: ask_gpt, CLAUDE: ask_claude, LOCAL: ask_llama}


def main() -> None:
    handle = omh.configure(
        sdk_disabled=True,  # health only: a real gateway exports spans and metrics as well
        enforce=True,
        breaker={"consecutive_failures": 2, "open_wait_s": 30.0, "max_open_wait_s": 30.0, "jitter": 0.0},
    )
    with SimulatedProvider() as cloud, SimulatedProvider() as local:
        callers = make_callers(cloud, local)
        answered_by: Counter[str] = Counter()

        def ask(key: ModelKey) -> str:
            text = callers[key]()
            answered_by[key.model] += 1
            return text

        # Server errors of the chosen model move on to the next candidate too.
        errors = (openai.InternalServerError, anthropic.InternalServerError)
        phases = [
            ("all healthy", None),
            ("gpt-4o down", (cloud, GPT.model, Fault.status(503))),
            ("claude overloaded too", (cloud, CLAUDE.model, Fault.overloaded())),
            ("the local model down too", (local, LOCAL.model, Fault.status(500))),
        ]
        for name, outage in phases:
            if outage is not None:
                provider, model, fault = outage
                provider.script(model, fault)  # down until the end of the script
            answered_by.clear()
            unavailable: NoModelAvailableError | None = None
            for _ in range(4):
                try:
                    call_with_fallback(CANDIDATES, ask, fall_back_on=errors)
                except NoModelAvailableError as exc:  # the gateway answers 503 with a Retry-After
                    answered_by["none"] += 1
                    unavailable = exc
            print(f"phase: {name}: answered by {dict(answered_by)}")
        if unavailable is not None:
            reasons = ", ".join(f"{r.key.model}={r.reason}" for r in unavailable.choice.refusals)
            print(f"no model available: {reasons}")
            if unavailable.retry_after_s is not None:
                print(f"retry after: {unavailable.retry_after_s:.1f} s")
        sent = Counter(r.model for r in (*cloud.requests, *local.requests))
        print(f"requests: {dict(sent)}")
    handle.shutdown()


if __name__ == "__main__":
    main()
