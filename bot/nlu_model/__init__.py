"""The NLU model's life: client, service, registry, hot swap, retraining, review queue."""
