"""Airflow's own authentication for the plugin's routes.

The api-server's auth manager (SimpleAuthManager in the embedded setup, FAB or another one in production)
decides: the route depends on Airflow's :func:`get_user`, which accepts the UI's session cookie (the JWT the
login page sets) or an ``Authorization: Bearer`` token, exactly as Airflow's own REST API does. An anonymous or
invalid request is refused: the JSON route answers 401/403; a page is redirected to Airflow's login page, which
brings the user back after login.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

User = Annotated[BaseUser, Depends(get_user)]
"""A route parameter of this type makes the route require a logged-in Airflow user."""


def wants_page(request: Request) -> bool:
    """A browser navigating to a page (not the JSON API, not a script fetching data)."""
    return request.method == "GET" and "/api/" not in request.url.path and \
        "text/html" in request.headers.get("accept", "")


def login_redirect(request: Request) -> RedirectResponse:
    from airflow.api_fastapi.app import get_auth_manager

    url = urlsplit(str(request.url))
    back = url.path + (f"?{url.query}" if url.query else "")
    return RedirectResponse(get_auth_manager().get_url_login(next_url=back), status_code=303)


async def refused(request: Request, exc: HTTPException):
    """Exception handler: a refused page goes to the login page; everything else keeps Airflow's answer."""
    if exc.status_code in (401, 403) and wants_page(request):
        return login_redirect(request)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
