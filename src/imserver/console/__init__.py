"""The operator console: server-rendered pages for the compliance team at ``/console``.

Jinja2 templates, a vendored htmx for partial updates and plain CSS, served by
imserver itself (no separate build or server). Views call the same services as
the admin API and hold no business rule: the service decides, the view shows.
See docs/console.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles


def install(app: FastAPI) -> None:
    """Serve the console's pages and static files on `app`.

    A configured session key is checked now, so a bad one stops the start
    instead of failing every console request.
    """
    from .security import session_key
    from .views import router

    session_key(app.state.settings.console_session_key, lambda: b"")

    app.mount("/console/static", StaticFiles(packages=[("imserver.console", "static")]), name="console-static")
    app.include_router(router)
