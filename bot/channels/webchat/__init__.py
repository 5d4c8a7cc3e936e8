"""The local web chat: its routes, pushes and static page."""
