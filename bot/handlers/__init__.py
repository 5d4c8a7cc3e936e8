"""Channel-neutral feature handlers: one module per command family."""
