"""GX Data Docs render fully styled offline: every CDN asset GX's pages reference is vendored, the gate's built
site references nothing outside itself, and a real headless Chromium renders it styled without a single request
leaving the machine."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from tests_support import week_end

from expectations.data_docs import external_references
from expectations.data_docs.assets import CDN_ASSETS, GX_IMAGE_HOST, PACKAGES, VENDOR_DIR
from segflow.jobs.validate import validate
from segflow.settings import Settings


def _gx_template_addresses() -> set[str]:
    """The http(s) addresses GX's page templates load (script/link/img sources and stylesheet urls)."""
    import great_expectations

    root = Path(great_expectations.__file__).parent / "render" / "view"
    found = set()
    for path in [*root.glob("templates/*.j2"), *root.glob("static/styles/*.css")]:
        text = path.read_text()
        for tag in re.finditer(r"<(script|link|img)\b[^>]*>", text, re.S):
            found |= set(re.findall(r"""(?:src|href)=["'](https?://[^"'{]+)""", tag.group(0)))
        found |= set(re.findall(r"""url\(['"]?(https?://[^'")]+)""", text))
        if "static_images_dir = \"https://" in text:
            found.add(re.search(r'static_images_dir = "(https://[^"]+)"', text).group(1))
    return found


def test_every_address_gx_loads_is_vendored_with_its_licence():
    addresses = _gx_template_addresses()
    assert len(addresses) >= 15  # the templates were read
    unknown = {a for a in addresses if a not in CDN_ASSETS and not a.startswith(GX_IMAGE_HOST)}
    assert unknown == set(), f"GX references assets segflow does not vendor: {unknown}"
    for local in CDN_ASSETS.values():
        assert (VENDOR_DIR / local).stat().st_size > 100, local
    for package in PACKAGES:
        licence = VENDOR_DIR / package.folder / (package.licence_file or "LICENSE")
        assert licence.read_text().strip(), package.name
        for path in package.files:
            assert (VENDOR_DIR / package.folder / path).is_file(), (package.name, path)


@pytest.fixture(scope="module")
def gate_site(built_home, tmp_path_factory) -> Path:
    """The Data Docs of a real gate run on a copy of the built warehouse."""
    home = tmp_path_factory.mktemp("docs") / "home"
    shutil.copytree(built_home.home, home, ignore=shutil.ignore_patterns("*.wal"))
    result = validate(Settings(home=home), as_of=week_end(4), raise_on_failure=False)
    assert result.data_docs == (home / "artifacts" / "data_docs" / "index.html").as_uri()
    return home / "artifacts" / "data_docs"


def test_gate_site_references_nothing_outside_itself(gate_site):
    pages = list(gate_site.rglob("*.html"))
    suites = {p.stem for p in (gate_site / "expectations").glob("*.html")}
    assert {"staged_events", "sessions", "orders", "customer_profiles", "run_metrics"} <= suites
    assert len(pages) >= 2 * len(suites) + 1  # index + one page per suite + one per validation result
    assert external_references(gate_site) == []
    html = "\n".join(p.read_text() for p in pages)
    assert "static/vendor/bootstrap@4.3.1/dist/css/bootstrap.min.css" in html
    assert "integrity=" not in html and "cdn" not in html.lower().replace("cdn_", "")


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) drives the system Chromium")
    return path


def test_chromium_renders_the_site_styled_with_no_request_leaving_the_machine(gate_site, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    validation_page = next((gate_site / "validations" / "staged_events").rglob("*.html"))
    requests: list[str] = []
    blocked: list[str] = []
    errors: list[str] = []

    def guard(route):
        url = route.request.url
        if url.startswith("file://") or url.startswith("data:"):
            route.continue_()
        else:  # anything else would leave the machine: refuse it and remember it
            blocked.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", guard)
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            styles = {}
            for name, target in (("index", gate_site / "index.html"), ("validation", validation_page)):
                page.goto(target.as_uri())
                page.wait_for_load_state("load")
                page.evaluate("document.fonts.ready")
                styles[name] = page.evaluate("""() => ({
                    navbar: getComputedStyle(document.querySelector('nav.navbar')).display,
                    body: getComputedStyle(document.body).fontFamily,
                    jquery: typeof window.jQuery,
                    table: typeof (window.jQuery && window.jQuery.fn.bootstrapTable),
                    vega: typeof window.vegaEmbed,
                    icons: document.fonts.check('900 16px "Font Awesome 6 Free"'),
                    logo: document.querySelector('.navbar-brand img').naturalWidth,
                })""")
                page.screenshot(path=str(tmp_path / f"{name}.png"))
        finally:
            browser.close()
    assert blocked == []
    assert requests and all(u.startswith(("file://", "data:")) for u in requests)
    assert any("static/vendor/bootstrap@4.3.1" in u for u in requests)
    for name, style in styles.items():
        assert style["navbar"] == "flex", (name, style)  # Bootstrap's .navbar; unstyled it is "block"
        assert "Times" not in style["body"], (name, style)  # Bootstrap's font stack, not the browser default
        assert style["jquery"] == "function" and style["table"] == "function" and style["vega"] == "function"
        assert style["icons"] is True and style["logo"] > 0, (name, style)
    assert errors == []
