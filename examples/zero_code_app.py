"""A plain OpenAI app: nothing here imports otel_model_health. Model health comes from running it under
``opentelemetry-instrument`` (docs/zero-code.md):

    pip install 'otel_model_health[all]' opentelemetry-distro
    OTEL_SERVICE_NAME=my-app OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \\
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf MODEL_HEALTH_HTTP_PORT=8321 \\
    opentelemetry-instrument python examples/zero_code_app.py

Every call below becomes a GenAI span with ``model_health.outcome``, the ``gen_ai.client.*`` and
``model_health.*`` metrics, and a line in ``http://127.0.0.1:8321/health``. Point it at any
OpenAI-compatible server with ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import os

import openai


def main() -> None:
    client = openai.OpenAI(max_retries=1)  # base URL and key from OPENAI_BASE_URL / OPENAI_API_KEY
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    question = [{"role": "user", "content": "Name three colours."}]
    answer = client.chat.completions.create(model=model, messages=question)  # type: ignore[arg-type]
    text = answer.choices[0].message.content or ""
    print("answer:", text)
    vectors = client.embeddings.create(model="text-embedding-3-small", input=text.split())
    print("embedded:", len(vectors.data), "words")
    print("models listed:", len(client.models.list().data))  # not a model call: passes through unmeasured


if __name__ == "__main__":
    main()
