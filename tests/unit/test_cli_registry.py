"""The CLI's command registry: every option documented, bad input answered at once without heavy imports,
`--help` explaining SEGFLOW_HOME, and dbt's per-node lines turned into a step line with counts."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segflow import progress
from segflow.cli import COMMANDS, build_parser

HEAVY = ("duckdb", "dbt", "airflow", "sklearn", "great_expectations", "pandas", "numpy", "pyarrow")
SEGFLOW = str(Path(sys.executable).with_name("segflow"))


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return dict(action.choices)


def test_every_option_of_every_command_has_help_text():
    commands = _subparsers(build_parser(full=True))
    assert set(commands) == set(COMMANDS)
    missing = []
    for name, parser in commands.items():
        assert parser.description, f"segflow {name} has no description"
        for action in parser._actions:  # noqa: SLF001
            if isinstance(action, argparse._HelpAction):  # noqa: SLF001
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without help text: {missing}"


def test_command_modules_import_nothing_heavy():
    """Building every command's parser (importing every command module) must not import a heavy library: that is
    what keeps argument errors instant. A fresh interpreter, so nothing else has imported them first."""
    code = ("import sys; from segflow.cli import build_parser; build_parser(full=True); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"command modules import {out}"


def test_streams_listed_for_help_match_the_canonical_ones():
    from segflow.cli_pipeline import STREAMS
    from segflow.sources.canonical import STREAMS as CANONICAL

    assert tuple(STREAMS) == tuple(CANONICAL)


@pytest.mark.parametrize("argv, env, fragment", [
    (["build", "--as-of", "next tuesday"], {}, "argument --as-of: 'next tuesday' is not an ISO date/time"),
    (["segment", "--as-of", "x"], {}, "argument --as-of"),
    (["load", "--as-of", "x"], {}, "argument --as-of"),
    (["demo", "--weeks", "1"], {}, "argument --weeks: 1 is below the minimum 2"),
    (["generate", "--start", "soon"], {}, "argument --start"),
    (["nosuchcommand"], {}, "invalid choice: 'nosuchcommand'"),
    (["status"], {"SEGFLOW_MIN_CUSTOMERS": "abc"}, "SEGFLOW_MIN_CUSTOMERS='abc'"),
    (["build"], {"SEGFLOW_LOCK_TIMEOUT_SECONDS": "-1"}, "SEGFLOW_LOCK_TIMEOUT_SECONDS"),
    (["erase"], {}, "name at least one person"),
    (["mapping", "check"], {}, "usage: segflow mapping check"),
])
def test_bad_arguments_and_settings_fail_fast_without_heavy_imports(argv, env, fragment, tmp_path):
    """A functional budget, not a benchmark: the error comes back well within 2 s (it took 6-29 s when the heavy
    libraries were imported before the arguments were checked), and none of them was imported on the way."""
    probe = ("import runpy, sys, atexit\n"
             f"heavy = {HEAVY!r}\n"
             "atexit.register(lambda: sys.stderr.write('HEAVY:' + ','.join(m for m in heavy if m in sys.modules)))\n"
             "sys.argv = ['segflow', *sys.argv[1:]]\n"
             "from segflow.cli import main\n"
             "sys.exit(main())\n")
    environ = {**os.environ, "SEGFLOW_HOME": str(tmp_path / "home"), **env}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", probe, *argv], env=environ, capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("segflow: error:") and fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.rstrip().endswith("HEAVY:"), f"heavy modules imported: {proc.stderr.rsplit('HEAVY:', 1)[-1]}"
    assert elapsed < 2.0, f"{argv}: {elapsed:.2f} s"
    assert not (tmp_path / "home").exists(), "a rejected command must not touch the home"


def test_installed_command_answers_help_at_once_and_explains_the_home(tmp_path):
    started = time.monotonic()
    proc = subprocess.run([SEGFLOW, "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SEGFLOW_HOME": str(tmp_path / "state")})
    assert time.monotonic() - started < 2.0
    assert proc.returncode == 0
    assert "SEGFLOW_HOME" in proc.stdout and f"{tmp_path / 'state'} (from SEGFLOW_HOME)" in proc.stdout
    for where in ("landing/", "warehouse.duckdb", "exports/", "artifacts/", "airflow/"):
        assert where in proc.stdout
    for name in COMMANDS:
        assert name in proc.stdout


def test_step_line_on_a_terminal_rewrites_one_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    with progress.reporting(out):
        for i in range(1, 4):
            progress.step("load", i, 3, f"file {i}")
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "3/3" in text and "[####################]" in text


def test_dbt_node_lines_become_build_steps_with_counts(tmp_path):
    """dbt's own log lines (as `dbt build` writes them) -> 'build [###...] n/N node status'."""
    lines = [
        "22:10:01  Running with dbt=1.11.16",
        "22:10:01  1 of 1 START hook: segflow.on-run-start.0 ...................................... [RUN]",
        "22:10:01  1 of 1 OK hook: segflow.on-run-start.0 ......................................... [OK in 0.06s]",
        "22:10:02  1 of 3 START sql view model staging.stg_events ................................ [RUN]",
        "22:10:02  1 of 3 OK created sql view model staging.stg_events ........................... [OK in 0.11s]",
        "22:10:02  2 of 3 START test not_null_stg_events_event_id ................................. [RUN]",
        "22:10:03  2 of 3 PASS accepted_values_stg_events_event_type__page_view__product_view__add_to_cart  [PASS in 0.05s]",
        "22:10:03  3 of 3 START sql table model marts.fct_sessions ................................ [RUN]",
        "22:10:04  3 of 3 ERROR creating sql table model marts.fct_sessions ....................... [ERROR in 0.2s]",
    ]
    log = tmp_path / "build.out"
    out = io.StringIO()
    with progress.reporting(out):
        step = progress.StepLine(out, interval=0)
        progress._reporter = step  # noqa: SLF001 - every update as a line, to see each count
        with progress.follow(log, progress.dbt_node_progress("build")):
            with open(log, "w") as fh:
                for line in lines:
                    fh.write(line + "\n")
                    fh.flush()
    text = out.getvalue().splitlines()
    assert any(line.endswith("1/3  staging.stg_events ok") for line in text), text
    assert any(line.endswith("2/3  accepted_values_stg_events_event_type__page_view__product_view__add_to_cart pass")
               for line in text), text
    assert not any("1/1" in line for line in text), "the project's hooks are not nodes"
    assert text[-1].endswith("3/3  marts.fct_sessions error"), text
