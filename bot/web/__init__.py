"""The web side of the running assistant: the server, and the public FAQ and law pages.

:mod:`bot.web.server` is the Starlette app (health, metrics, webhooks, web chat)
and the uvicorn server ``coopbot run`` runs; :mod:`bot.web.faq` the public pages
(``/faq``, ``/luat``), rendered from :mod:`bot.web.pages` with the Jinja2
templates in ``templates/`` and the stylesheet in ``static/``.
"""

from __future__ import annotations

from bot.web.server import SecurityHeaders, create_web_app, foreign_post, serve, web_hosts

__all__ = ["SecurityHeaders", "create_web_app", "foreign_post", "serve", "web_hosts"]
