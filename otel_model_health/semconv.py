"""Every telemetry name the library emits or reads, in one place.

GenAI names follow the OpenTelemetry GenAI semantic conventions (semantic-conventions v1.41.0 and the
work continued in open-telemetry/semantic-conventions-genai). A rename in the spec is a one-line change
here. Our own names live under ``model_health.*``.
"""

from __future__ import annotations

from typing import Final

# --- GenAI span attributes -------------------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_SYSTEM_DEPRECATED: Final = "gen_ai.system"  # read from foreign spans only, never written
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"  # only with content capture opted in
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"  # only with content capture opted in

ERROR_TYPE: Final = "error.type"
# The spec's fallback value of a low-cardinality attribute, also used for model ids past our bounds.
OTHER_VALUE: Final = "_OTHER"
ERROR_TYPE_OTHER: Final = OTHER_VALUE
SERVER_ADDRESS: Final = "server.address"
URL_FULL: Final = "url.full"
SERVER_PORT: Final = "server.port"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"

# gen_ai.operation.name values
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_GENERATE_CONTENT: Final = "generate_content"

# gen_ai.token.type values
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"

# gen_ai.provider.name well-known values
PROVIDER_OPENAI: Final = "openai"
PROVIDER_ANTHROPIC: Final = "anthropic"
PROVIDER_AZURE_OPENAI: Final = "azure.ai.openai"
PROVIDER_AZURE_INFERENCE: Final = "azure.ai.inference"
PROVIDER_AWS_BEDROCK: Final = "aws.bedrock"
PROVIDER_GEMINI: Final = "gcp.gemini"
PROVIDER_VERTEX_AI: Final = "gcp.vertex_ai"
PROVIDER_GCP_GEN_AI: Final = "gcp.gen_ai"
PROVIDER_MISTRAL: Final = "mistral_ai"
PROVIDER_GROQ: Final = "groq"
PROVIDER_DEEPSEEK: Final = "deepseek"
PROVIDER_XAI: Final = "x_ai"
PROVIDER_COHERE: Final = "cohere"
PROVIDER_PERPLEXITY: Final = "perplexity"
PROVIDER_WATSONX: Final = "ibm.watsonx.ai"

# --- GenAI metrics ---------------------------------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"

# The spec's advisory bucket boundaries.
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)

# --- model_health.* ------------------------------------------------------------------------------
MH_OPERATION: Final = "model_health.operation"
MH_GATEWAY: Final = "model_health.gateway"
MH_OUTCOME: Final = "model_health.outcome"
MH_BREAKER_STATE: Final = "model_health.breaker.state"
MH_TRANSITION: Final = "model_health.transition"
MH_FROM_STATE: Final = "model_health.breaker.from_state"
MH_TO_STATE: Final = "model_health.breaker.to_state"

# model_health.operation values
OPERATION_INFERENCE: Final = "inference"
OPERATION_HEALTH_CHECK: Final = "health_check"

METRIC_MH_OUTCOMES: Final = "model_health.outcomes"
METRIC_MH_SUCCESS_RATE: Final = "model_health.success_rate"
METRIC_MH_BREAKER_STATE: Final = "model_health.breaker.state"
METRIC_MH_BREAKER_TRANSITIONS: Final = "model_health.breaker.transitions"
METRIC_MH_EVICTIONS: Final = "model_health.registry.evictions"
METRIC_MH_INTERNAL_ERRORS: Final = "model_health.internal_errors"
METRIC_MH_SENTRY_DROPPED: Final = "model_health.sentry.dropped"

# The reverse link from a Sentry event to the causing trace.
SPAN_INCIDENT: Final = "model_health.incident"
SENTRY_EVENT_ID: Final = "sentry.event_id"

# Instrumentation scope for tracer and meter.
SCOPE_NAME: Final = "otel_model_health"
