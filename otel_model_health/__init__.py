"""otel_model_health."""
