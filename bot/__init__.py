"""Trợ lý HTX application: settings, answer service, NLU client, persistence and the CLI."""
