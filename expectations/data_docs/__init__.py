"""GX Data Docs that render fully styled offline.

GX's pages load their CSS, JavaScript, fonts and logo from CDNs and an S3 bucket (the addresses are listed
in :mod:`expectations.data_docs.assets`). After GX builds a site, :func:`make_offline` copies the vendored
files into the site's ``static/vendor/`` and rewrites every page and stylesheet to load them by relative
path, so the site works from ``file://``, from any static web server and from an archive, with no request
leaving the machine. :func:`external_references` lists whatever would still be loaded from outside (a new GX
release that adds a CDN address shows up there, and the gate logs it).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from expectations.data_docs.assets import CDN_ASSETS, GX_IMAGE_HOST, GX_IMAGES, VENDOR_DIR

log = logging.getLogger(__name__)
SITE_NAME = "segflow"

# a tag that loads something (not <a href>, which only navigates when clicked)
_LOADING_TAG = re.compile(r"<(script|link|img|iframe|source|embed|object|video|audio)\b[^>]*>", re.I | re.S)
_URL_ATTR = re.compile(r"""\b(src|href|data)\s*=\s*["']((?:https?:)?//[^"']+)["']""", re.I)
_CSS_URL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])((?:https?:)?//[^"')\s]+)""", re.I)
_SRI = re.compile(r"""\s+(integrity|crossorigin)\s*=\s*["'][^"']*["']""", re.I)
_GX_IMAGE = re.compile(re.escape(GX_IMAGE_HOST) + r"([A-Za-z0-9_.-]+)(\?[^\"')\s]*)?")


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def _rewrite(text: str, here: Path, site: Path) -> str:
    for url, local in CDN_ASSETS.items():
        text = text.replace(f'"{url}"', f'"{_relative(site / "static" / "vendor" / local, here)}"')

    def image(match: re.Match) -> str:
        name = GX_IMAGES.get(match.group(1))
        return _relative(site / "static" / "images" / name, here) if name else match.group(0)

    text = _GX_IMAGE.sub(image, text)
    # subresource integrity and CORS mode are for CDN copies; a file:// page cannot fetch a local file in CORS mode
    return _LOADING_TAG.sub(lambda m: _SRI.sub("", m.group(0)) if "static/vendor/" in m.group(0) else m.group(0),
                            text)


def make_offline(site: Path) -> list[tuple[str, str]]:
    """Vendor the assets into ``site`` and point its pages and stylesheets at them.

    Returns :func:`external_references` afterwards (empty when every loaded resource is local)."""
    site = Path(site)
    shutil.copytree(VENDOR_DIR, site / "static" / "vendor", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.py", "README.md"))
    for path in [*site.rglob("*.html"), *(site / "static" / "styles").glob("*.css")]:
        text = path.read_text(encoding="utf-8")
        new = _rewrite(text, path.parent, site)
        if new != text:
            path.write_text(new, encoding="utf-8")
    return external_references(site)


def external_references(site: Path) -> list[tuple[str, str]]:
    """``(file, address)`` of every resource a page or stylesheet of ``site`` loads from another host."""
    found = []
    for path in sorted(Path(site).rglob("*")):
        if path.suffix not in (".html", ".css"):
            continue
        text = path.read_text(encoding="utf-8")
        urls = _CSS_URL.findall(text)  # stylesheets, and <style> blocks in pages
        if path.suffix == ".html":
            urls += [m.group(2) for tag in _LOADING_TAG.finditer(text) for m in _URL_ATTR.finditer(tag.group(0))]
        found += [(path.relative_to(site).as_posix(), url) for url in urls]
    return found


def build_site(context, target: Path) -> Path:
    """Build the GX Data Docs of ``context`` into ``target`` (replaced whole) and make them work offline.

    The site is built next to ``target`` and swapped in, so a reader never sees half a site."""
    target = Path(target)
    building = target.with_name(f".{target.name}.building")
    old = target.with_name(f".{target.name}.old")
    for leftover in (building, old):
        shutil.rmtree(leftover, ignore_errors=True)
    context.add_data_docs_site(SITE_NAME, {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(building)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "show_cta_footer": False},
    })
    context.build_data_docs(site_names=[SITE_NAME])
    remaining = make_offline(building)
    if remaining:
        log.warning("Data Docs still load %d resources from other hosts (a GX upgrade?): %s", len(remaining),
                    sorted({u for _, u in remaining})[:5])
    if target.exists():
        target.rename(old)
    building.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target / "index.html"
