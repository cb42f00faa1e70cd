"""The Segments page in the real Airflow api-server (embedded SQLite setup, SimpleAuthManager, port 8098): anonymous
requests refused, path traversal refused, and a real Chromium logging in through Airflow's login page, opening
the page from Airflow's nav, checking segments, trend and links, and following the dbt docs and Data Docs links.
Screenshots go to tests/artifacts/ui/."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests_support import week_end

from segflow import airflow_local
from segflow.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PORT = int(os.environ.get("SEGFLOW_TEST_UI_PORT", "8098"))
BASE = f"http://127.0.0.1:{PORT}"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"
ROUTES = ["/segflow/", "/segflow/api/status", "/segflow/docs/dbt/", "/segflow/docs/data/index.html",
          "/segflow/docs/data/", "/segflow/report/"]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def airflow_ui(published_home: Settings):
    """`airflow api-server` on the published home, the way `make airflow` configures it (plugins/ included)."""
    if not _port_free(PORT):
        pytest.fail(f"port {PORT} is in use: stop what listens there or set SEGFLOW_TEST_UI_PORT")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
            mp.delenv(key)  # the embedded setup, whatever the developer has exported
        airflow_local.init(published_home)
        env = airflow_local.airflow_env(published_home)
    env["AIRFLOW__API__PORT"] = str(PORT)
    log = published_home.artifacts_dir / "airflow" / "api_server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "api-server", "--port", str(PORT),
                                 "--workers", "1"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"airflow api-server exited ({proc.returncode}): {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{BASE}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"airflow api-server did not answer within 240 s: {log.read_text()[-3000:]}")
            time.sleep(1)
        yield published_home, airflow_local.admin_password(published_home)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _token(password: str) -> str:
    response = httpx.post(f"{BASE}/auth/token", json={"username": airflow_local.ADMIN_USER, "password": password})
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


def _raw_get(path: str, token: str) -> int:
    """GET with the path sent exactly as written (no client-side normalisation of `..` or %2e)."""
    con = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    con.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    status = con.getresponse().status
    con.close()
    return status


def test_the_real_server_refuses_anonymous_requests(airflow_ui):
    for route in ROUTES:
        response = httpx.get(BASE + route)
        assert response.status_code == 401, route
        assert response.json() == {"detail": "Not authenticated"}
        page = httpx.get(BASE + route, headers={"accept": "text/html"})
        if "/api/" in route:
            assert page.status_code == 401, route
        else:  # a browser goes to Airflow's login page and comes back
            assert page.status_code == 303, route
            assert page.headers["location"].endswith("/auth/login?next=" + route.replace("/", "%2F"))
    plugins = httpx.get(f"{BASE}/api/v2/plugins", headers={"Authorization": f"Bearer {_token(airflow_ui[1])}"})
    views = [v for p in plugins.json()["plugins"] for v in p["external_views"]]
    ours = [v for v in views if v["name"] == "Segments"]
    assert len(ours) == 1 and {"href": "segflow/", "url_route": "segments"}.items() <= ours[0].items()
    # no plugin (e.g. Cosmos's dbt-docs view, if installed and configured) serves dbt docs without a login
    for view in views:
        if "://" not in view["href"]:
            response = httpx.get(f"{BASE}/{view['href'].lstrip('/')}", follow_redirects=True)
            assert not (response.status_code == 200 and "dbt Docs" in response.text), view


def test_an_authenticated_user_reads_status_and_documents_but_nothing_outside(airflow_ui):
    settings, password = airflow_ui
    token = _token(password)
    auth = {"Authorization": f"Bearer {token}"}
    status = httpx.get(f"{BASE}/segflow/api/status", headers=auth).json()
    assert status["status"]["as_of"] == week_end(5).isoformat()
    assert status["links"]["dbt"]["available"] and status["links"]["data-docs"]["available"]
    assert status["links"]["report"] == {"title": "Weekly report", "available": False,
                                         "missing": status["links"]["report"]["missing"]}
    dbt = httpx.get(f"{BASE}/segflow/docs/dbt/", headers=auth)
    assert dbt.status_code == 200 and "<title>dbt Docs</title>" in dbt.text
    gx = httpx.get(f"{BASE}/segflow/docs/data/", headers=auth)
    assert gx.status_code == 200 and "Data Docs" in gx.text
    css = httpx.get(f"{BASE}/segflow/docs/data/static/styles/data_docs_default_styles.css", headers=auth)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    secret = settings.airflow_home / "passwords.json"
    assert secret.is_file()
    for path in ("/segflow/docs/data/../../airflow/passwords.json",
                 "/segflow/docs/data/%2e%2e/%2e%2e/airflow/passwords.json",
                 "/segflow/docs/data/..%2f..%2fairflow%2fpasswords.json",
                 "/segflow/docs/data/%2fetc%2fpasswd", "/segflow/docs/data//etc/passwd",
                 "/segflow/report/..%2f..%2fairflow%2fpasswords.json", "/segflow/docs/dbt/..%2fmanifest.json"):
        assert _raw_get(path, token) in (404, 405), path


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target))
    return target


def test_browser_logs_in_opens_the_segments_page_and_follows_its_links(airflow_ui):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) drives the system Chromium")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium chromium-driver)")
    settings, password = airflow_ui
    status = json.loads((settings.exports_dir / "status" / "latest.json").read_text())
    outside: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1250})
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                (BASE, "data:", "about:")) else (outside.append(route.request.url), route.abort()))
            page = context.new_page()
            page.goto(f"{BASE}/segflow/")  # a deep link: Airflow's login page first
            page.wait_for_url("**/auth/login**")
            page.fill("input[name=username]", airflow_local.ADMIN_USER)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{BASE}/segflow/")  # back where the user wanted to go
            page.locator("#segments").wait_for()
            page.goto(f"{BASE}/")
            page.get_by_role("link", name="Segments").click()  # the nav entry of the plugin
            page.wait_for_url("**/plugin/segments**")
            frame = page.frame_locator("iframe[title=Segments]")
            frame.locator("#segments tbody tr").first.wait_for()
            rows = frame.locator("#segments tbody tr")
            assert rows.count() == len(status["segments"])
            for i, segment in enumerate(status["segments"]):
                text = rows.nth(i).inner_text()
                assert segment["segment_id"] in text and segment["name"] in text and f"{segment['size']:,}" in text
                assert rows.nth(i).locator("svg.spark polyline").count() >= 1
                box = rows.nth(i).locator("svg.spark").bounding_box()
                assert box and box["width"] > 50 and box["height"] > 10  # drawn, not collapsed
                assert rows.nth(i).locator(".trend-range").inner_text() == \
                    f"{[v for v in segment['trend'] if v is not None][0]} → {segment['size']}"
            assert "new this week" in frame.locator("#transitions").inner_text().lower()  # (CSS upper-cases it)
            assert frame.locator("#dq-badge").inner_text() == f"Data quality: {status['data_quality']['verdict']}"
            assert frame.locator("#drift-badge").inner_text() == f"Drift: {status['drift']['verdict']}"
            assert "not yet written" in frame.locator("[data-link=report]").inner_text()
            _shot(page, "segments_page")

            inner = page.locator("iframe[title=Segments]").element_handle().content_frame()
            assert inner.url == f"{BASE}/segflow/"
            frame.get_by_role("link", name="dbt docs").click()
            inner.wait_for_url("**/segflow/docs/dbt/**")
            inner.wait_for_function("() => document.title.includes('dbt Docs')", timeout=60_000)
            inner.get_by_text("segflow warehouse").first.wait_for(timeout=60_000)  # the project overview rendered
            _shot(page, "dbt_docs")
            page.go_back()
            frame.get_by_role("link", name="GX Data Docs").click()
            inner.wait_for_url("**/segflow/docs/data/")
            inner.get_by_role("link", name="staged_events").first.wait_for()  # the validation results table
            assert "Data Docs" in inner.title()
            navbar = inner.evaluate("() => getComputedStyle(document.querySelector('nav.navbar')).display")
            assert navbar == "flex"  # the vendored Bootstrap was served through the app too
            _shot(page, "data_docs")
        finally:
            browser.close()
    assert outside == []  # nothing left the machine
