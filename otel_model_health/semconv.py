"""Every telemetry name the library emits or reads, in one place.

GenAI names follow the OpenTelemetry GenAI semantic conventions (semantic-conventions v1.41.0, the
``SCHEMA_URL`` our tracer and meter carry, and the work continued in
open-telemetry/semantic-conventions-genai). Names come from ``opentelemetry-semantic-conventions`` (a
dependency of the SDK) where the oldest version our SDK floor allows has them; the newer ones, the
enum values and our own ``model_health.*`` names are written out here. A rename in the spec is a
one-line change here.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gen_ai_metrics
from opentelemetry.semconv.attributes import (
    error_attributes,
    exception_attributes,
    http_attributes,
    server_attributes,
    url_attributes,
)

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.0"

# --- GenAI span attributes -------------------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = _gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_SYSTEM_DEPRECATED: Final = _gen_ai.GEN_AI_SYSTEM  # read from foreign spans only, never written
GEN_AI_REQUEST_MODEL: Final = _gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL: Final = _gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_RESPONSE_ID: Final = _gen_ai.GEN_AI_RESPONSE_ID
GEN_AI_RESPONSE_FINISH_REASONS: Final = _gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
GEN_AI_USAGE_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_TOKEN_TYPE: Final = _gen_ai.GEN_AI_TOKEN_TYPE
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"  # only with content capture opted in
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"  # only with content capture opted in

ERROR_TYPE: Final = error_attributes.ERROR_TYPE
# The spec's fallback value of a low-cardinality attribute, also used for model ids past our bounds.
OTHER_VALUE: Final = "_OTHER"
ERROR_TYPE_OTHER: Final = OTHER_VALUE
SERVER_ADDRESS: Final = server_attributes.SERVER_ADDRESS
URL_FULL: Final = url_attributes.URL_FULL
SERVER_PORT: Final = server_attributes.SERVER_PORT
HTTP_RESPONSE_STATUS_CODE: Final = http_attributes.HTTP_RESPONSE_STATUS_CODE
HTTP_REQUEST_RESEND_COUNT: Final = http_attributes.HTTP_REQUEST_RESEND_COUNT
EXCEPTION_MESSAGE: Final = exception_attributes.EXCEPTION_MESSAGE
EXCEPTION_STACKTRACE: Final = exception_attributes.EXCEPTION_STACKTRACE

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
METRIC_OPERATION_DURATION: Final = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
METRIC_TOKEN_USAGE: Final = _gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
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
MH_SLO_NAME: Final = "model_health.slo.name"
MH_SLO_WINDOW: Final = "model_health.slo.window"  # "5m", "1h", "3d", "30d" ...
MH_SLO_SEVERITY: Final = "model_health.slo.severity"  # "page" | "ticket"
MH_REJECTION_REASON: Final = "model_health.rejection.reason"  # breaker_open | trials_busy | rate_limited

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
# The fleet store (docs/fleet.md): failed Redis operations, outcomes not shared, foreign values ignored.
METRIC_MH_STORE_ERRORS: Final = "model_health.store.errors"
METRIC_MH_STORE_DROPPED: Final = "model_health.store.dropped"
METRIC_MH_STORE_IGNORED: Final = "model_health.store.ignored"
METRIC_MH_SLO_BURN_RATE: Final = "model_health.slo.burn_rate"
METRIC_MH_SLO_BUDGET_REMAINING: Final = "model_health.slo.error_budget.remaining"
METRIC_MH_SLO_ALERTS: Final = "model_health.slo.alerts"
METRIC_MH_SLOW_CALL_RATE: Final = "model_health.slow_call_rate"
METRIC_MH_REJECTIONS: Final = "model_health.rejections"  # calls refused by enforcement (a counter)

# The reverse link from a Sentry event to the causing trace.
SPAN_INCIDENT: Final = "model_health.incident"
SENTRY_EVENT_ID: Final = "sentry.event_id"

# Instrumentation scope for tracer and meter.
SCOPE_NAME: Final = "otel_model_health"
