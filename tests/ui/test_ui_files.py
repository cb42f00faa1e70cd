"""The Segments page's building blocks that need no warehouse: path-safe file serving, sparklines, and Airflow's
auth manager refusing anonymous and forged requests before anything is read."""

from __future__ import annotations

import pytest

from segflow.ui.files import safe_file
from segflow.ui.page import SPARK_HEIGHT, sparkline


@pytest.fixture
def docs_root(tmp_path):
    root = tmp_path / "site"
    (root / "static").mkdir(parents=True)
    (root / "index.html").write_text("<h1>index</h1>")
    (root / "static" / "app.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("outside")
    (root / "link").symlink_to(tmp_path / "secret.txt")
    return root


def test_safe_file_serves_files_inside_the_folder_only(docs_root):
    assert safe_file(docs_root, "index.html") == (docs_root / "index.html").resolve()
    assert safe_file(docs_root, "static/app.css") == (docs_root / "static" / "app.css").resolve()
    for bad in ("../secret.txt", "static/../../secret.txt", "/etc/passwd", str(docs_root.parent / "secret.txt"),
                "link", "static", "missing.html", "index.html\x00.png", "..\\secret.txt", ""):
        assert safe_file(docs_root, bad) is None, bad


def test_sparkline_scales_the_series_and_leaves_gaps_for_missing_weeks():
    line = sparkline([10, 20, None, 30])
    assert len(line["segments"]) == 2  # the week without the segment breaks the line
    first, second = (run.split() for run in line["segments"])
    ys = [float(p.split(",")[1]) for p in first + second]
    assert ys[0] > ys[1] > ys[2]  # larger sizes are drawn higher (smaller y)
    assert max(ys) <= SPARK_HEIGHT and min(ys) >= 0
    assert line["last"] == tuple(float(v) for v in second[-1].split(","))
    assert sparkline([None, None])["segments"] == []
    assert len(sparkline([5])["segments"]) == 1  # one week: one point, no division by zero


@pytest.fixture
def plugin_client(tmp_path, monkeypatch):
    """The plugin's app mounted as Airflow mounts it, with Airflow's real SimpleAuthManager (and its /auth app)."""
    from airflow.api_fastapi import app as airflow_app
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from segflow.ui.app import URL_PREFIX, create_app

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER",
                       "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(tmp_path / "passwords.json"))
    monkeypatch.setenv("SEGFLOW_HOME", str(tmp_path / "home"))
    (tmp_path / "passwords.json").write_text('{"admin": "secret"}')
    app = FastAPI()
    app.mount(URL_PREFIX, create_app())
    airflow_app.purge_cached_app()
    airflow_app.init_auth_manager(app)
    try:
        yield TestClient(app)
    finally:
        airflow_app.purge_cached_app()


ROUTES = ["/segflow/", "/segflow/api/status", "/segflow/docs/dbt/", "/segflow/docs/data/index.html",
          "/segflow/report/latest.html", "/segflow/docs/data/", "/segflow/report/"]


def test_anonymous_requests_are_refused(plugin_client):
    for route in ROUTES:
        api = plugin_client.get(route, follow_redirects=False)
        assert api.status_code == 401, route
        assert api.json() == {"detail": "Not authenticated"}
        page = plugin_client.get(route, headers={"accept": "text/html"}, follow_redirects=False)
        if route.startswith("/segflow/api/"):
            assert page.status_code == 401
        else:  # a browser is sent to Airflow's login page, which brings it back
            assert page.status_code == 303, route
            assert page.headers["location"] == "/auth/login?next=" + route.replace("/", "%2F")
    assert plugin_client.get("/segflow/openapi.json").status_code == 404  # no unauthenticated schema either
    assert plugin_client.get("/segflow/docs").status_code in (401, 404)


def test_a_forged_token_is_refused(plugin_client):
    import jwt

    forged = jwt.encode({"sub": "admin", "role": "ADMIN"}, "not-the-secret-" * 5, algorithm="HS512")
    for headers in ({"Authorization": f"Bearer {forged}"}, {"Cookie": f"_token={forged}"}):
        response = plugin_client.get("/segflow/api/status", headers=headers)
        assert response.status_code == 403, headers  # Airflow: an invalid JWT is forbidden
        assert "status" not in response.json()
