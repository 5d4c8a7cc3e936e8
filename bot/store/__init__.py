"""Persistence: the engine, the migrations and one module per table family."""
