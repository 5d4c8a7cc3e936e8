"""Channel adapters: each parses its platform's messages into ``Incoming`` and renders replies."""
