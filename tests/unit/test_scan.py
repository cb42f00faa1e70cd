"""The independent record count and the gzip reader under the loader (fast; the bad-input corpus in
tests/corpus/ checks the same rules end to end)."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest

from segflow.sources.gunzip import Gunzip
from segflow.sources.mapping import CsvOptions
from segflow.sources.scan import _Inspect, scan

HEADER = b"event_id,event_type,occurred_at,user_id\n"


def _row(n: int, ending: bytes = b"\n") -> bytes:
    return b"e%d,page_view,2025-01-10T09:00:00Z,u1" % n + ending


def _gunzip(data: bytes) -> tuple[bytes, Gunzip]:
    stream = Gunzip(io.BytesIO(data))
    return stream.read(), stream


def test_gunzip_reads_concatenated_members_and_notes_zero_padding():
    one, two = gzip.compress(b"first\n", mtime=0), gzip.compress(b"second\n", mtime=0)
    assert _gunzip(one + two)[0] == b"first\nsecond\n"
    assert not _gunzip(one + two)[1].padding
    data, stream = _gunzip(one + b"\0" * 3000 + two + b"\0" * 5)
    assert data == b"first\nsecond\n"
    assert (stream.padding, stream.damage, stream.members) == (True, None, 2)


def test_gunzip_keeps_what_a_truncated_stream_holds_and_records_the_damage():
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    cut = packer.compress(b"line 1\nline 2\nli") + packer.flush(zlib.Z_FULL_FLUSH)  # no last block, no trailer
    data, stream = _gunzip(cut)
    assert data == b"line 1\nline 2\nli"
    assert "ends early" in stream.damage


def test_gunzip_records_garbage_after_a_member_as_damage():
    data, stream = _gunzip(gzip.compress(b"kept\n") + b"not gzip at all\n")
    assert data == b"kept\n"
    assert "corrupt" in stream.damage


def test_a_gz_file_of_which_nothing_decompresses_is_not_gzip(tmp_path):
    path = tmp_path / "plain_2025-01-10.csv.gz"
    path.write_bytes(HEADER + _row(1))
    with pytest.raises(gzip.BadGzipFile, match="not a gzip file"):
        scan(path, "csv", CsvOptions(), tmp_path / "tmp")


def test_a_zero_padded_gz_is_counted_and_read_from_a_copy(tmp_path):
    path = tmp_path / "padded_2025-01-10.csv.gz"
    path.write_bytes(gzip.compress(HEADER + _row(1) + _row(2)) + b"\0" * 512)
    found = scan(path, "csv", CsvOptions(), tmp_path / "tmp")
    assert (found.records, found.damage, found.temporary) == (2, None, True)
    assert found.readable.read_bytes() == HEADER + _row(1) + _row(2)


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 4096])
def test_line_endings_are_seen_across_piece_boundaries(piece):
    cases = {HEADER.replace(b"\n", b"\r\n") + _row(1, b"\r\n"): {"\r\n"},
             HEADER + _row(1, b"\r\n"): {"\n", "\r\n"},
             HEADER.replace(b"\n", b"\r") + _row(1, b"\r"): {"\r"}}
    for data, endings in cases.items():
        inspected = _Inspect(io.BytesIO(data))
        buffer = bytearray(piece)
        while inspected.readinto(buffer):
            pass
        assert inspected.endings == endings, data


def test_mixed_line_endings_are_read_from_a_copy_with_lf_record_endings(tmp_path):
    quoted = b'e2,page_view,2025-01-10T09:01:00Z,"line one\r\nline two"\r\n'  # a CRLF inside quotes is data
    path = tmp_path / "mixed_2025-01-10.csv"
    path.write_bytes(HEADER.replace(b"\n", b"\r\n") + _row(1) + quoted + _row(3, b"\r\n"))
    found = scan(path, "csv", CsvOptions(), tmp_path / "tmp")
    assert (found.records, found.temporary) == (3, True)
    expected = HEADER + _row(1) + b'e2,page_view,2025-01-10T09:01:00Z,"line one\r\nline two"\n' + _row(3)
    assert found.readable.read_bytes() == expected


def test_a_nul_byte_does_not_stop_the_count(tmp_path):
    path = tmp_path / "nul_2025-01-10.csv"
    path.write_bytes(HEADER + _row(1) + b"e2,page_view,2025-01-10T09:01:00Z,u\x001\n" + _row(3))
    assert scan(path, "csv", CsvOptions(), tmp_path / "tmp").records == 3


def test_a_file_in_one_line_ending_is_read_as_it_is(tmp_path):
    path = tmp_path / "crlf_2025-01-10.csv"
    path.write_bytes(HEADER.replace(b"\n", b"\r\n") + _row(1, b"\r\n") + _row(2, b"\r\n"))
    found = scan(path, "csv", CsvOptions(), tmp_path / "tmp")
    assert (found.records, found.readable, found.temporary) == (2, path, False)
