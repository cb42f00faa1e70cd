"""Where the published artifacts the page links live, and a path-safe way to serve a file from a folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segflow.settings import Settings


@dataclass(frozen=True)
class Artifact:
    """A static folder the app serves: its root, the page opened by default, and what to say when absent."""

    key: str
    title: str
    root: Path
    index: str
    missing: str

    @property
    def available(self) -> bool:
        return (self.root / self.index).is_file()


def artifacts(settings: Settings) -> dict[str, Artifact]:
    return {a.key: a for a in (
        Artifact("report", "Weekly report", settings.home / "reports" / "weekly", "latest.html",
                 "not yet written (the weekly report job writes reports/weekly/latest.html)"),
        Artifact("dbt", "dbt docs", settings.dbt_target_dir, "static_index.html",
                 "not generated yet: run `segflow docs`"),
        Artifact("data-docs", "GX Data Docs", settings.artifacts_dir / "data_docs", "index.html",
                 "not built yet: the data-quality gate builds them on its first run"),
    )}


def safe_file(root: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside ``root``, or None when it is absent or lies outside ``root``.

    ``relative`` comes from a URL: an absolute path, a ``..`` that climbs out, a NUL byte or a symlink that
    leads out of the folder is refused, whatever its encoding was (Starlette has decoded it already)."""
    if "\x00" in relative or "\\" in relative:
        return None
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts:
        return None
    try:
        base = root.resolve(strict=True)
        target = (base / candidate).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target
