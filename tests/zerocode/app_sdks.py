"""An app that knows nothing of otel_model_health: it imports only the LLM SDKs and calls the simulated
provider at SIM_BASE_URL with each. tests/zerocode/test_zero_code.py runs it under
``opentelemetry-instrument``. After its calls it prints READY and waits for a line on stdin, so the test
can read ``/health`` from the live process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import anthropic
import groq
import openai
from google import genai
from google.genai import types
from mistralai.client import Mistral

BASE = os.environ["SIM_BASE_URL"]
HELLO = [{"role": "user", "content": "Say hello."}]


def main() -> None:
    client = openai.OpenAI(base_url=BASE + "/v1", api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    print("openai stream:", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    client.models.list()  # not a model call: passes through unmeasured

    async def async_call() -> None:
        async with openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="sk-test", max_retries=0) as aclient:
            await aclient.chat.completions.create(model="gpt-4o-mini", messages=HELLO)

    asyncio.run(async_call())

    claude = anthropic.Anthropic(base_url=BASE, api_key="sk-ant-test", max_retries=0)
    claude.messages.create(model="claude-test", max_tokens=64, messages=HELLO)  # type: ignore[arg-type]

    gemini = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=BASE))
    gemini.models.generate_content(model="gemini-2.5-flash", contents="Say hello.")

    Mistral(api_key="test", server_url=BASE).chat.complete(model="mistral-small-latest", messages=HELLO)  # type: ignore[arg-type]

    groq.Groq(base_url=BASE, api_key="gsk-test", max_retries=0).chat.completions.create(
        model="llama-3.3-70b-versatile",
        messages=HELLO,  # type: ignore[arg-type]
    )

    for _ in range(6):  # the test scripted an outage of this model
        with contextlib.suppress(openai.InternalServerError):
            client.chat.completions.create(model="flaky-model", messages=HELLO)
    print("READY", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
