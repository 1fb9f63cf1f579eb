"""The ops console: server-rendered pages for ops teams and managers, under ``/console``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tousu_analytics.console import manage, pages
from tousu_analytics.console.sessions import SignInRequired
from tousu_analytics.console.web import HERE, Refused, refused, sign_in_required


def install(app: FastAPI) -> None:
    """Mount the console's pages, its static files and its refusals (HTML, not JSON)."""
    app.include_router(pages.router)
    app.include_router(manage.router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(Refused, refused)
