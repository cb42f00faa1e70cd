"""Live progress of long steps for the command line: one step line with counts ("build  37/112  stg_events").

Jobs call :func:`step` (a no-op unless a reporter is installed, so Airflow tasks and library use print nothing).
The CLI installs :class:`StepLine` with :func:`reporting`: on a terminal it rewrites one line on stderr; when
stderr is a file or a pipe it writes a line per update, at most one per second per step, always the first and
the last. :func:`follow` turns the lines a subprocess writes to a log file (dbt's "12 of 85 OK ...") into
steps while it runs.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

Reporter = Callable[[str, "int | None", "int | None", str], None]
_reporter: Reporter | None = None


def step(label: str, done: int | None = None, total: int | None = None, detail: str = "") -> None:
    """Report progress of ``label`` (``done`` of ``total`` units, ``detail`` = what is being worked on)."""
    if _reporter is not None:
        _reporter(label, done, total, detail)


def active() -> bool:
    return _reporter is not None


class StepLine:
    def __init__(self, stream: TextIO, interval: float = 1.0):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval
        self._last: dict[str, float] = {}
        self._open = False  # a terminal line waiting to be finished
        self._lock = threading.Lock()

    @staticmethod
    def render(label: str, done: int | None, total: int | None, detail: str) -> str:
        parts = [f"{label:<9}"]
        if done is not None and total:
            width = 20
            filled = min(width, int(width * done / total))
            parts.append(f"[{'#' * filled}{'.' * (width - filled)}] {done:>{len(str(total))}}/{total}")
        elif done is not None:
            parts.append(f"{done:,}")
        if detail:
            parts.append(detail)
        return "  ".join(parts)

    def __call__(self, label: str, done: int | None, total: int | None, detail: str) -> None:
        line = self.render(label, done, total, detail)
        final = total is not None and done is not None and done >= total
        with self._lock:
            if self.tty:
                width = 100
                self.stream.write("\r" + line[:width].ljust(width) + ("\n" if final else ""))
                self._open = not final
            else:
                now = time.monotonic()
                first = label not in self._last
                if not (first or final or now - self._last[label] >= self.interval):
                    return
                self._last[label] = now
                self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            if self.tty and self._open:
                self.stream.write("\n")
                self.stream.flush()
                self._open = False


@contextlib.contextmanager
def reporting(stream: TextIO | None = None) -> Iterator[StepLine]:
    """Install a step-line reporter on ``stream`` (default stderr) for the duration of the block."""
    global _reporter
    line = StepLine(stream or sys.stderr)
    previous, _reporter = _reporter, line
    try:
        yield line
    finally:
        line.close()
        _reporter = previous


# --- dbt's per-node lines ------------------------------------------------------------------------------------

_DBT_NODE = re.compile(r"\b(\d+) of (\d+) (OK|PASS|FAIL|ERROR|WARN|SKIP|NO-OP|START)\b.*?\s(\S+)\s+(?:\.{3,}|\[)")
"""dbt's per-node line: '12:00:01  3 of 85 OK created sql view model staging.stg_events .... [OK in 0.1s]' (a
long node name is followed by the bracket directly); the project's hooks ('1 of 1 OK hook: ...') are left out."""


def dbt_node_progress(label: str = "build") -> Callable[[str], None]:
    """A line handler turning dbt's 'N of M STATUS ... node' lines into ``step(label, finished, M, node)``."""
    finished: set[int] = set()

    def handle(line: str) -> None:
        match = _DBT_NODE.search(line)
        if not match or " hook: " in line:
            return
        index, total, status, node = int(match[1]), int(match[2]), match[3], match[4]
        if status == "START":
            step(label, len(finished), total, f"{node} ...")
            return
        finished.add(index)
        step(label, len(finished), total, f"{node} {status.lower()}")

    return handle


@contextlib.contextmanager
def follow(path: Path, handle: Callable[[str], None], poll: float = 0.2) -> Iterator[None]:
    """While the block runs, feed every complete line appended to ``path`` to ``handle`` (a thread tails it);
    the lines left when the block ends are fed too. Nothing happens unless a reporter is installed."""
    if _reporter is None:
        yield
        return
    stop = threading.Event()
    position = 0

    def drain() -> None:
        nonlocal position
        try:
            with open(path, errors="replace") as fh:
                fh.seek(position)
                while True:
                    line = fh.readline()
                    if not line.endswith("\n"):
                        break
                    position = fh.tell()
                    handle(line)
        except OSError:
            pass

    def loop() -> None:
        while not stop.wait(poll):
            drain()

    thread = threading.Thread(target=loop, name="segflow-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        drain()
