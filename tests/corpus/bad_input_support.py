"""The bad-input corpus (tests/fixtures/bad_input/): its case table, the files it generates, an independent
record counter and the README rendered from the table.

The committed files are copied as they are. Files that cannot be committed sensibly (a 10 MB line, damaged
gzip, links, a pipe, a file still being written) are written here from their description in ``cases.yml``, so
the table stays the one place that says what each file holds and what must come of it.

Run ``python tests/corpus/bad_input_support.py --readme`` to rewrite the corpus README from the table.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path

import yaml

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "bad_input"
CASES_FILE = CORPUS / "cases.yml"
README = CORPUS / "README.md"
# committed files get this modification time, so the claim rule (SEGFLOW_LOAD_MIN_FILE_AGE_SECONDS) takes them
OLD = datetime(2025, 2, 1, tzinfo=UTC).timestamp()
LOADED = ("loaded", "damaged")


def load_cases() -> list[dict]:
    return yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))["cases"]


def all_files(cases: list[dict]) -> list[dict]:
    return [f for case in cases for f in case["files"]]


def rerun_status(spec: dict) -> str:
    """Status after the second load run: a file loaded in the first is then known (skipped)."""
    if "rerun_status" in spec:
        return spec["rerun_status"]
    return "skipped" if spec["status"] in LOADED else spec["status"]


def loads_of(spec: dict) -> list[dict]:
    """The loads a file must produce, in order (a changed file has two)."""
    if "loads" in spec:
        return spec["loads"]
    return [spec] if spec["status"] in LOADED else []


# --- writing the landing tree -----------------------------------------------------------------------------------


def _text(gen: dict, key: str = "text") -> bytes:
    text = gen[key]
    if "big" in gen:
        text = text.replace("@BIG@", "x" * gen["big"])
    return text.encode("utf-8")


def _truncated_gzip(text: str, cut: str) -> bytes:
    """A gzip stream holding ``text`` + ``cut`` that ends early: everything written so far is flushed (so it can
    be decompressed whatever zlib version wrote it), but no last block and no trailer follow."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    return packer.compress((text + cut).encode("utf-8")) + packer.flush(zlib.Z_FULL_FLUSH)


def _gzip(gen: dict) -> bytes:
    data = b"".join(gzip.compress(m.encode("utf-8"), mtime=0) for m in gen["members"])
    return data + gen.get("append", "").encode("utf-8") + b"\0" * gen.get("zero_padding", 0)


def _parquet(columns: dict, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for name, values in columns.items():
        if isinstance(values, list):
            arrays[name] = pa.array(values, type=pa.string())
            continue
        (kind, items), = values.items()
        if kind == "timestamp_utc":
            arrays[name] = pa.array([datetime.fromisoformat(v).replace(tzinfo=UTC) for v in items],
                                    type=pa.timestamp("us", tz="UTC"))
        else:
            arrays[name] = pa.array(items, type={"int64": pa.int64(), "double": pa.float64()}[kind])
    pq.write_table(pa.table(arrays), path)


def _generate(spec: dict, landing: Path, outside: Path) -> None:
    gen, path = spec["generate"], landing / spec["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if gen.get("folder"):
        path.mkdir(exist_ok=True)
    elif gen.get("fifo"):
        os.mkfifo(path)
    elif "symlink" in gen:
        target = gen["symlink"]
        if target.startswith("OUTSIDE/"):
            target = outside / target.removeprefix("OUTSIDE/")
        if "target_text" in gen:
            real = target if Path(target).is_absolute() else path.parent / target
            real.parent.mkdir(parents=True, exist_ok=True)
            real.write_text(gen["target_text"], encoding="utf-8")
        path.symlink_to(target)
    elif "truncated_gzip" in gen:
        path.write_bytes(_truncated_gzip(gen["truncated_gzip"]["text"], gen["truncated_gzip"]["cut"]))
    elif "gzip" in gen:
        path.write_bytes(_gzip(gen["gzip"]))
    elif "parquet" in gen:
        _parquet(gen["parquet"], path)
    else:
        path.write_bytes(_text(gen))
    if gen.get("ready_marker"):
        path.with_name(path.name + ".ready").touch()


def _age(landing: Path, fresh: set[Path]) -> None:
    """Give every entry an old modification time, except the files that must look freshly written."""
    for folder, dirs, files in os.walk(landing):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            if path not in fresh:
                os.utime(path, (OLD, OLD), follow_symlinks=False)


def materialize(landing: Path, outside: Path, cases: list[dict]) -> None:
    """The landing tree of the first load run: the committed files plus the generated ones."""
    shutil.copytree(CORPUS / "landing", landing, dirs_exist_ok=True, symlinks=True)
    outside.mkdir(parents=True, exist_ok=True)
    fresh = set()
    for spec in all_files(cases):
        if "generate" in spec:
            _generate(spec, landing, outside)
            if spec["generate"].get("fresh"):
                fresh |= {landing / spec["path"], landing / (spec["path"] + ".ready")}
    _age(landing, fresh)


def change_for_rerun(landing: Path, cases: list[dict]) -> None:
    """What happens between the two load runs: a loaded file is rewritten, a growing file is finished."""
    for spec in all_files(cases):
        gen = spec.get("generate", {})
        if "rerun_text" not in gen:
            continue
        path = landing / spec["path"]
        path.write_bytes(_text(gen, "rerun_text"))
        if gen.get("rerun_ready_marker"):
            path.with_name(path.name + ".ready").touch()
        else:
            os.utime(path, (OLD + 86400, OLD + 86400))


# --- counting records without segflow's code -------------------------------------------------------------------


def readable_bytes(path: Path) -> bytes:
    """The file's bytes; for .gz the decompressed members, as far as they can be read."""
    data = path.read_bytes()
    if not path.name.lower().endswith(".gz"):
        return data
    out, rest = [], data
    while rest.strip(b"\0"):
        member = zlib.decompressobj(31)
        try:
            out.append(member.decompress(rest))
        except zlib.error:
            break
        if not member.eof:
            break
        rest = member.unused_data
    return b"".join(out)


def csv_records(data: bytes) -> int:
    """Records of a CSV text with a header: line breaks outside double quotes end a record, records without
    any value are blank, the first record is the header. (A quote that never closes runs to the end.)"""
    records, has_value, quoted = 0, False, False
    for ch in data.decode("latin-1"):
        if quoted:
            quoted = ch != '"'
        elif ch == '"':
            quoted = has_value = True
        elif ch in "\r\n":
            records += has_value
            has_value = False
        elif not ch.isspace() and ch != ",":
            has_value = True
    records += has_value
    return max(records - 1, 0)


def count_records(path: Path) -> int:
    """Records in a delivered file, counted by the test's own simple rules (not the loader's)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).num_rows
    data = readable_bytes(path)
    if name.endswith(".jsonl"):
        return sum(1 for line in data.split(b"\n") if line.strip())
    return csv_records(data)


# --- the README --------------------------------------------------------------------------------------------------

_GROUPS = {
    "control": "Control", "compression": "Compressed files", "empty": "Empty files", "size": "Size",
    "encoding": "Encoding", "csv": "CSV structure", "json": "JSON lines", "parquet": "Parquet",
    "landing": "What in landing/ is read at all", "delivery": "Deliveries over time",
    "staging": "Rows that parse but are not valid events (dbt staging)",
}

_INTRO = """# Bad-input corpus

What a hostile-but-fair delivery must produce, one case per kind of bad input. `cases.yml` is the
specification (files, expected landing status, records counted, rows loaded, rows rejected at load with line
and reason code, and what staging does with the rows that load); `tests/corpus/test_bad_input.py` loads the
whole `landing/` tree into a fresh home with the real loader, runs one real `dbt build`, and checks every case
against the warehouse tables. Files that cannot be committed sensibly (a 10 MB line, damaged gzip, Parquet,
symbolic links, a pipe, a file still being written or changed after its load) are generated by the test from
their description in `cases.yml`. This file is generated from `cases.yml`
(`python tests/corpus/bad_input_support.py --readme`).

**Where a bad record ends up, and why there:**

- **Quarantined in staging** (row level; kept with its text and counted in
  `staging.stg_raw__events_quarantine` by reason): the line parses into fields, but a value breaks a rule
  (a quantity 1.5, a date in 2099, an unknown type, a conflicting re-delivery). The fields are known, so the row
  is kept verbatim in `raw` and can be replayed after a rule or mapping fix.
- **Rejected at load** (row level; `meta.load_rejects` with line number, reason code and text): the line
  cannot be parsed into fields at all (invalid JSON, a stray delimiter, an undecodable byte, a cut-off line).
  There are no fields to store in `raw`; the rest of the file loads.
- **Whole file rejected** (`meta.landing_entries` status `rejected` with the reason; nothing of it is
  written): the file's structure is ambiguous for every row (which of two `event_id` columns?), its encoding or
  format cannot be read, or nothing says how to read it (no mapping, a broken mapping).
- **Damaged**: a compressed file that ends early or turns to garbage; the readable part loads (records
  rejected or quarantined as above), the damage is recorded in `meta.load_manifest.damage`.
- **Ignored / pending / skipped**: never read (hidden, a folder, a link out of `landing/`, a pipe), not complete
  yet, or the same bytes were loaded before. Each still has a row in `meta.landing_entries` with the reason.

Every loaded file balances: records counted in the file (independently of the parser) = loaded + rejected;
every load balances in staging: rows in raw = staged + quarantined + duplicates (`marts.fct_load_audit`).
A case marked **not yet enforced** states a rule segflow does not meet yet; its test is an expected failure
(strict: it fails the suite once the rule holds, so the mark is removed with the fix).
"""


def _counts(spec: dict) -> str:
    parts = []
    for number, load in enumerate(loads_of(spec), start=1):
        text = f"{load['records']} records: {load['loaded']} loaded"
        rejects = load.get("rejects", [])
        if rejects:
            text += f", {len(rejects)} rejected (" + ", ".join(f"line {n} {code}" for n, code in rejects) + ")"
        staged = [f"{load['staged']} staged"] if load.get("staged") else []
        staged += [f"{n} quarantined {reason}" for reason, n in load.get("quarantined", {}).items()]
        staged += [f"{load['duplicates']} duplicate"] if load.get("duplicates") else []
        if staged:
            text += "; " + ", ".join(staged)
        parts.append((f"load {number}: " if len(loads_of(spec)) > 1 else "") + text)
    return "; ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_readme(cases: list[dict]) -> str:
    lines = [_INTRO]
    lines.append(f"## The {len(cases)} kinds\n")
    for group, title in _GROUPS.items():
        members = [c for c in cases if c["group"] == group]
        if not members:
            continue
        lines += [f"### {title}\n", "| kind | file (in landing/) | outcome | counts | why |", "|---|---|---|---|---|"]
        for case in members:
            files = "<br>".join(f"`{f['path']}`" + (" (generated)" if "generate" in f else "") + f": {f['status']}"
                                + (f", then {f['rerun_status']}" if "rerun_status" in f else "")
                                for f in case["files"])
            counts = "<br>".join(c for c in (_counts(f) for f in case["files"]) if c)
            outcome = case["outcome"] + (f". **Not yet enforced:** {case['xfail']}" if case.get("xfail") else "")
            lines.append(f"| {_cell(case['kind'])} | {files} | {_cell(outcome)} | {_cell(counts)} | "
                         f"{_cell(case['why'])} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--readme"]:
        README.write_text(render_readme(load_cases()), encoding="utf-8")
        print(f"wrote {README}")
    else:
        sys.exit("usage: python tests/corpus/bad_input_support.py --readme")
