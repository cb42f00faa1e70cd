"""The PII key (where it comes from, when it is refused), the SQL HMAC against Python's hmac, and redaction of
rejected lines (unit level and through a real load). dbt-level checks are in tests/dbt/test_privacy_dbt.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

import duckdb
import pytest

from segflow.cli import main
from segflow.jobs.build import dbt_env, dbt_vars
from segflow.jobs.load import load_landing
from segflow.privacy import (
    DEMO_PII_KEY,
    KEY_ENV,
    NEW_KEY_COMMAND,
    PSEUDONYM_SQL,
    PiiKeyError,
    install_pseudonymizer,
    pseudonymize,
    resolve_pii_key,
)
from segflow.redaction import REDACTED, mask_emails, pii_fields, redact_line
from segflow.settings import Settings, SettingsError, get_settings
from segflow.sources.mapping import Mapping
from segflow.warehouse import connect


def _home(tmp_path, demo: bool = False, **kw) -> Settings:
    settings = Settings(home=tmp_path / "home", **kw)
    if demo:  # what the generator leaves in a home it wrote
        settings.truth_dir.mkdir(parents=True)
        (settings.truth_dir / "generation.json").write_text("{}")
    return settings


@pytest.fixture
def no_key(monkeypatch):
    monkeypatch.delenv("SEGFLOW_PII_KEY", raising=False)
    monkeypatch.delenv("SEGFLOW_PII_KEY_FILE", raising=False)


def _mapping(**kw) -> Mapping:
    """A complete events mapping (id, type, time) plus the columns a test is about."""
    columns = {"event_id": "id", "event_type": {"value": "page_view"}, "occurred_at": "ts", **kw.pop("columns", {})}
    return Mapping(name=kw.pop("name", "shop"), columns=columns, **kw)


def _python_hmac(key: bytes, email: str) -> str:
    return hmac.new(key, email.strip(" ").lower().encode(), hashlib.sha256).hexdigest()


# -- where the key comes from, and when it is refused -------------------------------------------------------


def test_a_home_of_real_data_without_a_key_is_refused_in_one_line(tmp_path, no_key):
    settings = _home(tmp_path)
    with pytest.raises(PiiKeyError) as err:
        resolve_pii_key(settings)
    message = str(err.value)
    assert "\n" not in message
    assert "SEGFLOW_PII_KEY is not set" in message and str(settings.home) in message
    assert NEW_KEY_COMMAND in message


def test_the_demo_key_is_accepted_only_in_a_demo_home(tmp_path, no_key):
    demo = resolve_pii_key(_home(tmp_path / "a", demo=True))
    assert demo.is_demo and demo.secret == DEMO_PII_KEY.encode()
    with pytest.raises(PiiKeyError, match="is the public demo key"):  # set explicitly, still refused
        resolve_pii_key(_home(tmp_path / "b", pii_key=DEMO_PII_KEY))


@pytest.mark.parametrize(("key", "why"), [("change-me", "placeholder"), ("CHANGE-ME-" + "x" * 40, "placeholder"),
                                         ("x" * 31, "31 characters long")])
def test_placeholders_and_short_keys_are_refused_without_echoing_them(tmp_path, no_key, key, why):
    with pytest.raises(PiiKeyError, match=why) as err:
        resolve_pii_key(_home(tmp_path, demo=True, pii_key=key))
    assert key not in str(err.value)


def test_key_from_a_file_and_its_errors(tmp_path, no_key):
    secret = secrets.token_hex(32)
    (tmp_path / "key").write_text(secret + "\n")
    key = resolve_pii_key(_home(tmp_path, pii_key_file=tmp_path / "key"))
    assert key.secret == secret.encode() and "SEGFLOW_PII_KEY_FILE" in key.source
    assert secret not in repr(key)
    with pytest.raises(PiiKeyError, match=r"SEGFLOW_PII_KEY_FILE=.*missing: cannot read"):
        resolve_pii_key(_home(tmp_path, pii_key_file=tmp_path / "missing"))
    with pytest.raises(PiiKeyError, match="both SEGFLOW_PII_KEY and SEGFLOW_PII_KEY_FILE"):
        resolve_pii_key(_home(tmp_path, pii_key=secret, pii_key_file=tmp_path / "key"))


def test_the_removed_salt_setting_is_named_not_ignored(monkeypatch):
    monkeypatch.setenv("SEGFLOW_PII_SALT", "my-old-salt")
    with pytest.raises(SettingsError) as err:
        get_settings()
    assert "SEGFLOW_PII_SALT" in str(err.value) and "SEGFLOW_PII_KEY" in str(err.value)
    assert "my-old-salt" not in str(err.value)


def test_cli_build_of_a_real_data_home_without_a_key_fails_with_one_line(tmp_path, no_key, monkeypatch, capsys):
    monkeypatch.setenv("SEGFLOW_HOME", str(tmp_path / "home"))
    assert main(["build"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segflow: error: SEGFLOW_PII_KEY is not set")
    assert "Traceback" not in capsys.readouterr().err


def test_the_key_reaches_dbt_only_through_its_environment(tmp_path, monkeypatch):
    secret = secrets.token_hex(32)
    monkeypatch.setenv("SEGFLOW_PII_KEY", secret)
    settings = get_settings(home=tmp_path / "home")
    env = dbt_env(settings)
    assert "SEGFLOW_PII_KEY" not in env  # only the DBT_ENV_SECRET_ copy, which dbt masks in its logs
    assert bytes.fromhex(env[KEY_ENV]) == secret.encode()
    assert "-c segflow.pii_ipad=" in env["PGOPTIONS"]
    assert secret not in json.dumps(dbt_vars(settings))  # vars go on the command line and into artifacts


# -- the HMAC in SQL -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [b"k" * 32, b"\x00" * 64, secrets.token_bytes(100),
                                 "'); select email --  \\ ' \" \u00e9".encode() * 2])
def test_sql_pseudonym_equals_pythons_hmac(key):
    con = duckdb.connect()
    install_pseudonymizer(con, key)
    emails = ["Anna@Example.com", "  bob@example.org  ", "o'brien@example.ie", "zoë@exämple.de", "", "   ", None]
    con.execute("create table t (email varchar)")
    con.executemany("insert into t values (?)", [[e] for e in emails])
    got = con.execute(f"select email, {PSEUDONYM_SQL.format(column='email')} from t").fetchall()
    for email, pseudonym in got:
        expected = _python_hmac(key, email) if email and email.strip(" ") else None
        assert pseudonym == expected, email


def test_python_pseudonymize_matches_sql(tmp_path):
    key = resolve_pii_key(_home(tmp_path, pii_key=secrets.token_hex(32)))
    con = duckdb.connect()
    install_pseudonymizer(con, key.secret)
    for email in ("A@B.example", " x.y+z@example.com ", "ÉLODIE@example.fr"):
        (sql,) = con.execute(f"select {PSEUDONYM_SQL.format(column='?')}", [email]).fetchall()[0]
        assert pseudonymize(email, key) == sql


def test_without_a_key_the_function_fails_clearly_instead_of_hashing_to_null():
    con = duckdb.connect()
    install_pseudonymizer(con, None)
    with pytest.raises(duckdb.Error, match="no PII key in this dbt process"):
        con.execute("select segflow_pseudonymize('a@b.example')").fetchall()


# -- redaction -------------------------------------------------------------------------------------------------


def test_csv_line_redacts_pii_fields_by_position_and_masks_emails_elsewhere():
    fields = pii_fields(_mapping(columns={"email": "Mail", "user_id": "Cust"}, pii=["Handy"]))
    header = ["id", "Cust", "Mail", "Handy", "note"]
    line = 'e1,C1,anna@example.com,+49 170 1234567,"call bob@example.org, urgent"'
    assert redact_line(line, fields, header) == \
        f'e1,C1,{REDACTED},{REDACTED},"call {REDACTED}, urgent"'
    # shifted columns: fields cannot be identified, only addresses are masked
    shifted = "e2,C2,extra,anna@example.com,+49 170 1234567,x"
    assert redact_line(shifted, fields, header) == f"e2,C2,extra,{REDACTED},+49 170 1234567,x"


def test_json_redacts_pii_keys_at_any_depth_and_masks_emails_and_url_encoded_ones():
    fields = pii_fields(Mapping(name="web", format="segment"))
    line = json.dumps({"type": "identify", "userId": "u1", "traits": {"email": "a@b.example", "phone": "123",
                       "plan": "pro"}, "context": {"ip": "10.1.2.3", "page": {"url": "/x?e=a%40b.example"}}})
    out = json.loads(redact_line(line, fields))
    assert out["traits"] == {"email": REDACTED, "phone": REDACTED, "plan": "pro"}
    assert out["context"]["ip"] == REDACTED and out["context"]["page"]["url"] == f"/x?e={REDACTED}"
    assert out["userId"] == "u1"
    broken = '{"email": "a@b.example", "oops'
    assert redact_line(broken, fields) == f'{{"email": "{REDACTED}", "oops'
    assert mask_emails("no address here") == "no address here"


def test_mapping_expression_columns_feeding_email_are_pii():
    mapping = _mapping(name="crm", columns={"email": {"expr": "lower(col('E Mail'))"}})
    assert "email" in pii_fields(mapping) and "e mail".replace(" ", "") in pii_fields(mapping)


def test_rejected_lines_of_a_real_load_keep_no_email(tmp_path):
    settings = _home(tmp_path)
    events = settings.landing_dir / "events"
    events.mkdir(parents=True)
    header = "event_id,event_type,occurred_at,anonymous_id,email,page_url"
    (events / "events_2025-01-01.csv").write_text(
        f"{header}\n"
        "e1,page_view,2025-01-01T10:00:00Z,a1,ok@example.com,/\n"
        "e2,page_view,2025-01-01T10:01:00Z,a1,anna@example.com,/x,too,many\n"  # shifted: masked
        "e3,page_view,2025-01-01T10:02:00Z,bob@example.org\n")                 # too few fields: masked
    (events / "events_2025-01-02.jsonl").write_text(
        '{"event_id": "e4", "event_type": "page_view", "occurred_at": "2025-01-02T10:00:00Z", '
        '"anonymous_id": "a2", "email": "carl@example.net"}\n'
        '{"event_id": "e5", "email": "dora@example.com", "broken\n')
    web = settings.landing_dir / "web"
    web.mkdir()
    (web / "_mapping.yml").write_text("name: web\nformat: segment\n")
    (web / "web_2025-01-03.jsonl").write_text(json.dumps(  # a track without an event name: rejected
        {"type": "track", "messageId": "m1", "userId": "u1", "timestamp": "2025-01-03T10:00:00Z",
         "context": {"traits": {"email": "eve@example.com", "phone": "+1 555 0100"}}}) + "\n")
    report = load_landing(settings)
    assert [f.status for f in report.files] == ["loaded"] * 3, report.files
    assert report.rows_rejected == 4
    with connect(settings, read_only=True) as con:
        rejects = con.execute("select file_name, line_number, reason, raw_line from meta.load_rejects "
                              "order by file_name, line_number").fetchall()
        loaded = con.execute("select count(email) from raw.events").fetchall()[0][0]
    assert loaded == 2  # valid rows keep their address in raw (staging pseudonymizes it)
    assert len(rejects) == report.rows_rejected
    text = json.dumps(rejects)
    for address in ("anna@", "bob@", "dora@", "eve@"):
        assert address not in text, address
    assert "+1 555 0100" not in text
    assert all(REDACTED in raw for _, _, _, raw in rejects)
    by_file = {(f, n) for f, n, _, _ in rejects}
    assert by_file == {("events_2025-01-01.csv", 3), ("events_2025-01-01.csv", 4), ("events_2025-01-02.jsonl", 2),
                       ("web_2025-01-03.jsonl", 1)}
