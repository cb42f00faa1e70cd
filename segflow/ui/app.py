"""The FastAPI app Airflow mounts at ``/segflow`` (``plugins/segflow_ui.py``): every route needs an Airflow login.

- ``/``                  the Segments page (HTML)
- ``/api/status``        the published status artifact (JSON) plus which linked documents exist
- ``/report/…``          the weekly report folder (``reports/weekly``, default page ``latest.html``)
- ``/docs/dbt/``         dbt docs (the single-file ``static_index.html`` of ``segflow docs``)
- ``/docs/data/…``       GX Data Docs of the last gate run (``artifacts/data_docs``)
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from segflow.settings import get_settings
from segflow.ui.auth import User, refused
from segflow.ui.files import Artifact, artifacts, safe_file
from segflow.ui.page import load_status, render

URL_PREFIX = "/segflow"
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _serve(artifact: Artifact, relative: str) -> FileResponse:
    path = safe_file(artifact.root, relative or artifact.index)
    if path is None:
        raise HTTPException(404, f"{artifact.title}: no such file")
    return FileResponse(path, headers=_NO_STORE)


def create_app() -> FastAPI:
    # no /docs, /redoc or /openapi.json of its own: every route of this app needs a login
    app = FastAPI(title="segflow UI", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(HTTPException, refused)

    @app.get("/", response_class=HTMLResponse)
    def segments_page(user: User) -> HTMLResponse:
        return HTMLResponse(render(get_settings()), headers=_NO_STORE)

    @app.get("/api/status")
    def status(user: User) -> JSONResponse:
        settings = get_settings()
        links = {key: {"title": a.title, "available": a.available, "missing": None if a.available else a.missing}
                 for key, a in artifacts(settings).items()}
        return JSONResponse({"status": load_status(settings), "links": links}, headers=_NO_STORE)

    def folder_routes(prefix: str, key: str) -> None:
        @app.get(prefix, include_in_schema=False)
        def to_folder(user: User) -> RedirectResponse:
            # relative links inside the documents need the slash; a relative Location keeps any base_url prefix
            return RedirectResponse(prefix.rsplit("/", 1)[-1] + "/", status_code=307)

        @app.get(prefix + "/{relative:path}")
        def serve(relative: str, user: User) -> FileResponse:
            return _serve(artifacts(get_settings())[key], relative)

    folder_routes("/report", "report")
    folder_routes("/docs/data", "data-docs")

    @app.get("/docs/dbt/")
    def dbt_docs(user: User) -> FileResponse:
        return _serve(artifacts(get_settings())["dbt"], "")

    @app.get("/docs/dbt", include_in_schema=False)
    def dbt_docs_slash(user: User) -> RedirectResponse:
        return RedirectResponse("dbt/", status_code=307)

    return app
