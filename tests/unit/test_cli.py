"""The ``segflow`` command line: clean errors (message + exit code, never a traceback) and JSON output.

Most tests call ``segflow.cli.main(argv)`` in-process with ``SEGFLOW_HOME`` pointing at ``tmp_path``;
one runs the installed console script as a real subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segflow.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    for key in list(os.environ):
        if key.startswith("SEGFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SEGFLOW_HOME", str(home))
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    return home


def _error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("segflow: error:")
    assert "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize("command", ["load", "build", "validate", "run"])
def test_bad_as_of_is_a_clean_error(home, capsys, command):
    assert main([command, "--as-of", "next tuesday"]) == 2
    err = _error(capsys)
    assert "'next tuesday'" in err and "ISO date" in err
    assert not home.exists(), "a rejected option must not touch the home"


def test_status_on_empty_home_is_not_ready(home, capsys):
    assert main(["status"]) == 2
    err = _error(capsys)
    assert str(home / "warehouse.duckdb") in err
    assert "segflow load" in err


def test_load_without_landing_is_input_error(home, capsys):
    assert main(["load"]) == 2
    err = _error(capsys)
    assert str(home / "landing") in err
    assert "segflow generate" in err


def test_generate_then_load_prints_json(home, capsys):
    assert main(["generate", "--customers", "40", "--days", "7"]) == 0
    generated = json.loads(capsys.readouterr().out)
    assert generated["customers"] == 40
    assert Path(generated["landing_dir"]) == home / "landing"
    assert (home / "truth" / "personas.csv").is_file()
    assert generated["events_delivered"] > 0

    assert main(["load"]) == 0
    loaded = json.loads(capsys.readouterr().out)
    assert loaded["files"] == []  # only the problems, unless --verbose
    assert loaded["rows_loaded"] > 0
    assert loaded["files_loaded"] == generated["files"]
    assert loaded["files_rejected"] == 0
    # every delivered row is either loaded or rejected as a broken line; customers arrive once each
    assert loaded["rows_rejected"] == generated["broken_lines"]
    assert loaded["rows_loaded"] == generated["events_delivered"] - generated["broken_lines"] + 40

    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["load"]["rows_loaded"] == loaded["rows_loaded"]
    assert status["load"]["files"] == loaded["files_loaded"]
    assert status["load"]["rows_in_files"] == loaded["rows_loaded"] + loaded["rows_rejected"]

    # a second load finds nothing new; --verbose lists no skipped files either
    assert main(["load", "--verbose"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["files_loaded"], again["files_skipped"], again["rows_loaded"]) == (0, generated["files"], 0)
    assert again["files"] == []


def test_load_as_of_limits_the_interval(home, capsys):
    assert main(["generate", "--customers", "40", "--days", "7", "--start", "2025-09-01"]) == 0
    capsys.readouterr()
    assert main(["load", "--as-of", "2025-09-03", "--verbose"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = sorted(f["file"] for f in out["files"])
    assert names and all(("2025-09-01" in n) or ("2025-09-02" in n) for n in names)
    assert "events_2025-09-01.csv" in names and "events_2025-09-02.csv" in names


def test_as_of_with_offset_is_converted_to_utc(home, capsys):
    assert main(["generate", "--customers", "40", "--days", "7", "--start", "2025-09-01"]) == 0
    capsys.readouterr()
    # 2025-09-03T01:00+02:00 is 2025-09-02T23:00 UTC: the 2025-09-02 partition is not complete yet
    assert main(["load", "--as-of", "2025-09-03T01:00+02:00", "--verbose"]) == 0
    names = {f["file"] for f in json.loads(capsys.readouterr().out)["files"]}
    assert "events_2025-09-01.csv" in names
    assert "events_2025-09-02.csv" not in names


def test_installed_console_script_reports_errors_cleanly(tmp_path):
    script = Path(sys.executable).parent / "segflow"
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGFLOW_")}
    env["SEGFLOW_HOME"] = str(tmp_path / "home")
    for argv, needle in ((["load", "--as-of", "2025-99-99"], "'2025-99-99'"),
                         (["status"], str(tmp_path / "home" / "warehouse.duckdb"))):
        proc = subprocess.run([str(script), *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert proc.stderr.startswith("segflow: error:")
        assert "Traceback" not in proc.stderr
        assert needle in proc.stderr


@pytest.mark.parametrize("argv, fragment", [
    (["generate", "--customers", "0"], "argument --customers: 0 is below the minimum 1"),
    (["generate", "--start", "notadate"], "argument --start: 'notadate' is not an ISO date"),
    (["generate", "--late-share", "0.7"], "argument --late-share: 0.7 is not a share in [0, 0.5)"),
    (["demo", "--weeks", "1"], "argument --weeks: 1 is below the minimum 2"),
    (["demo", "--customers", "10"], "argument --customers: 10 is below the minimum 100"),
])
def test_bad_options_give_one_line_errors(argv, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGFLOW_HOME", str(tmp_path / "home"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("segflow: error:") and fragment in err
    assert "Traceback" not in err


def test_build_before_any_load_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGFLOW_HOME", str(tmp_path / "home"))
    assert main(["build"]) == 2
    assert "run `segflow load` first" in capsys.readouterr().err
    (tmp_path / "home" / "landing" / "customers").mkdir(parents=True)
    (tmp_path / "home" / "landing" / "customers" / "customers_2025-09-01.csv").write_text(
        "customer_id,signup_at\nC1,2025-09-01T00:00:00Z\n")
    assert main(["load"]) == 0
    capsys.readouterr()
    assert main(["build"]) == 2
    err = capsys.readouterr().err
    assert "raw.events" in err and "segflow load" in err


def test_an_invalid_setting_is_one_line_naming_the_variable_and_the_allowed_values(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEGFLOW_CONSENT_POLICY", "maybe")
    monkeypatch.setenv("SEGFLOW_K_MIN", "one")
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "SEGFLOW_CONSENT_POLICY='maybe': allowed: one of require_recorded, collected_under_consent" in err
    assert "SEGFLOW_K_MIN='one': allowed: a whole number >= 2" in err


def test_the_clv_calibration_end_setting_reaches_dbt_and_a_bad_date_is_one_line(tmp_path, monkeypatch, capsys):
    from segflow.jobs.build import dbt_vars
    from segflow.settings import Settings

    monkeypatch.setenv("SEGFLOW_HOME", str(tmp_path / "home"))
    assert dbt_vars(Settings())["segflow__clv_calibration_end"] is None
    monkeypatch.setenv("SEGFLOW_CLV_CALIBRATION_END", "1997-09-30")
    assert dbt_vars(Settings())["segflow__clv_calibration_end"] == "1997-09-30"
    monkeypatch.setenv("SEGFLOW_CLV_CALIBRATION_END", "1997-09-31")
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SEGFLOW_CLV_CALIBRATION_END='1997-09-31'" in err
