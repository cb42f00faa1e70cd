"""An invalid setting, of every kind, is one line naming the variable, the value and what is allowed: through the
CLI, through a DAG task, and from a malformed `.env` (which python-dotenv would otherwise skip with a warning,
losing the setting)."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from segflow.cli import main
from segflow.settings import Settings, SettingsError, get_settings
from segflow.settings_errors import describe_validation_error


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A clean SEGFLOW_* environment and a working directory without a .env."""
    for key in [k for k in os.environ if k.upper().startswith("SEGFLOW_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEGFLOW_HOME", str(tmp_path / "home"))
    return monkeypatch


def _one_line_error(capsys, argv=("status",)) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.removeprefix("segflow: error: ").rstrip("\n")


CASES = [
    # kind, variable, value, what the message must say is allowed
    ("int", "SEGFLOW_K_MIN", "one", "a whole number >= 2"),
    ("int bound", "SEGFLOW_PSI_BINS", "1", "a whole number >= 2"),
    ("float", "SEGFLOW_DQ_MAX_PRICE", "cheap", "a finite number > 0"),
    ("float nan", "SEGFLOW_MIN_SILHOUETTE", "nan", "a finite number >= -1 and <= 1"),
    ("float range", "SEGFLOW_DQ_MIN_IDENTIFIED_SHARE", "1.5", "a finite number >= 0 and <= 1"),
    ("float negative", "SEGFLOW_LOCK_TIMEOUT_SECONDS", "-5", "a finite number >= 0"),
    ("enum", "SEGFLOW_CONSENT_POLICY", "maybe", "one of require_recorded, collected_under_consent"),
    ("date", "SEGFLOW_MIN_EVENT_DATE", "2025-02-30", "a date YYYY-MM-DD"),
    ("optional date", "SEGFLOW_CLV_CALIBRATION_END", "soon", "a date YYYY-MM-DD, or empty for unset"),
    ("size", "SEGFLOW_DUCKDB_MEMORY_LIMIT", "lots", "a size such as 4GB, 512MB or 1.5GiB, or empty for half"),
    ("json list", "SEGFLOW_FEATURES", "recency_days", 'a JSON list of names, e.g. ["recency_days", "frequency"]'),
    ("rule between two", "SEGFLOW_K_MAX", "2", "a whole number >= 2 (k_max (2) must be >= k_min (3))"),
]


@pytest.mark.parametrize(("kind", "variable", "value", "allowed"), CASES, ids=[c[0] for c in CASES])
def test_every_kind_of_bad_value_is_one_line(env, capsys, kind, variable, value, allowed):
    env.setenv(variable, value)
    message = _one_line_error(capsys)
    assert message.startswith(f"invalid setting {variable}={value!r}: allowed: {allowed}"), message


def test_paths_say_what_is_wrong_with_them(env, capsys, tmp_path):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    env.setenv("SEGFLOW_HOME", str(a_file))
    assert _one_line_error(capsys).endswith(f"allowed: a folder path ({a_file} exists and is not a folder)")
    env.setenv("SEGFLOW_HOME", str(tmp_path / "home"))
    env.setenv("SEGFLOW_DBT_PROJECT_DIR", str(tmp_path))
    assert "allowed: a folder path" in _one_line_error(capsys) and "holds no dbt_project.yml" in \
        _one_line_error(capsys)
    env.delenv("SEGFLOW_DBT_PROJECT_DIR")
    env.setenv("SEGFLOW_DBT_EXECUTABLE", str(a_file))
    assert _one_line_error(capsys).endswith(f"allowed: the path of an executable file, or empty ({a_file} is not "
                                            "an executable file)")


def test_several_bad_values_are_still_one_line(env, capsys):
    env.setenv("SEGFLOW_K_MIN", "x")
    env.setenv("SEGFLOW_PSI_WARN", "high")
    message = _one_line_error(capsys)
    assert "SEGFLOW_K_MIN='x'" in message and "SEGFLOW_PSI_WARN='high'" in message


def test_a_secret_value_is_not_printed():
    class WithToken(Settings):
        api_token: int = 0  # a made-up secret-named setting that can fail validation

    with pytest.raises(ValidationError) as info:
        WithToken(api_token="hunter2")
    message = describe_validation_error(WithToken, info.value)
    assert "hunter2" not in message and message.startswith("invalid setting SEGFLOW_API_TOKEN='***': allowed:")


def test_the_removed_salt_setting_says_what_replaced_it(env, capsys):
    env.setenv("SEGFLOW_PII_SALT", "my-old-salt")
    message = _one_line_error(capsys)
    assert "my-old-salt" not in message
    assert message.startswith("invalid setting SEGFLOW_PII_SALT='***': allowed: nothing (unset it) (is no longer "
                              "used: e-mail is pseudonymized with a keyed HMAC-SHA-256; set SEGFLOW_PII_KEY")


def test_booleans_name_their_words():
    """No segflow setting is a bool today; the message of one added later is derived the same way."""

    class WithFlag(Settings):
        dry_run: bool = False

    with pytest.raises(ValidationError) as info:
        WithFlag(dry_run="perhaps")
    assert describe_validation_error(WithFlag, info.value) == (
        "invalid setting SEGFLOW_DRY_RUN='perhaps': allowed: true or false (also 1/0, yes/no, on/off)")


def test_an_empty_optional_setting_means_unset(env, tmp_path):
    env.setenv("SEGFLOW_DUCKDB_TEMP_DIR", "")
    env.setenv("SEGFLOW_CLV_CALIBRATION_END", "")
    settings = get_settings()
    # not the working directory (what Path("") is): the default spill folder inside the home
    assert settings.duckdb_temp_path == settings.home / "tmp" / "duckdb"
    assert settings.clv_calibration_end is None


def test_a_malformed_env_file_is_one_line_naming_the_line(env, capsys, tmp_path):
    (tmp_path / ".env").write_text("SEGFLOW_K_MIN=4\nSEGFLOW_K_MAX 9\nSEGFLOW_PSI_BINS='12\n")
    message = _one_line_error(capsys)
    assert message == (f"{tmp_path / '.env'} line 2 is not NAME=value: 'SEGFLOW_K_MAX 9' (and 1 more); fix or "
                       "remove it (quote a value that holds spaces or #)")
    (tmp_path / ".env").write_text("SEGFLOW_K_MIN=4\nSEGFLOW_K_MAX=9\n")
    assert (get_settings().k_min, get_settings().k_max) == (4, 9)
    (tmp_path / ".env").write_text("# deployment\nSEGFLOW_K_MIN=zero\n")
    assert _one_line_error(capsys).startswith("invalid setting SEGFLOW_K_MIN='zero': allowed: a whole number >= 2")


def test_a_dag_task_fails_without_retry_on_the_same_one_line_message(env):
    from airflow.sdk.exceptions import AirflowFailException

    from segflow.orchestration import fail_fast_on_user_errors

    env.setenv("SEGFLOW_CONSENT_POLICY", "maybe")
    with pytest.raises(SettingsError) as direct:
        get_settings()
    task = fail_fast_on_user_errors(lambda: get_settings().week_start_weekday)  # what is_week_end does
    with pytest.raises(AirflowFailException) as info:
        task()
    assert str(info.value) == str(direct.value)
    assert "\n" not in str(info.value) and "SEGFLOW_CONSENT_POLICY='maybe'" in str(info.value)
