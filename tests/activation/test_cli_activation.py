"""`segflow activate | triggers | dead-letter` through the real command line: clean errors, JSON output."""

from __future__ import annotations

import json
import os

import pytest

from segflow.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("SEGFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SEGFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.mark.parametrize(("argv", "fragment"), [
    (["activate"], "No published segments"),
    (["activate", "--as-of", "2025-10-06"], "No published segments as of 2025-10-06"),
    (["activate", "--as-of", "soon"], "ISO date"),
    (["triggers"], "segflow build"),
])
def test_not_ready_is_one_clean_line(home, capsys, argv, fragment):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("segflow: error:") and fragment in captured.err
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1


def test_bad_sink_settings_are_one_line(home, capsys, monkeypatch):
    monkeypatch.setenv("SEGFLOW_SINK_RATE_LIMIT", "0")
    assert main(["dead-letter"]) == 2
    assert "SEGFLOW_SINK_RATE_LIMIT" in capsys.readouterr().err


def test_dead_letter_on_a_fresh_home_lists_nothing(home, capsys):
    assert main(["dead-letter"]) == 0
    assert json.loads(capsys.readouterr().out) == {"dead_letters": 0, "records": 0, "batches": []}


def test_every_activation_option_has_help():
    from segflow.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")  # noqa: SLF001 - argparse's own list
    for command in ("activate", "triggers", "dead-letter"):
        parser = sub.choices[command]
        assert parser.description, command
        for action in parser._actions:  # noqa: SLF001
            assert action.help, f"{command} {action.option_strings}"


def test_a_sink_url_that_is_not_http_is_refused(home, capsys, monkeypatch):
    monkeypatch.setenv("SEGFLOW_SINK_URL", "crm.example.com/batches")
    assert main(["activate"]) == 2
    err = capsys.readouterr().err
    assert "SEGFLOW_SINK_URL" in err and "http" in err and err.count("\n") == 1
