"""Decompress a gzip file the way ``gzip -d`` reads it, and say how it ends instead of raising."""

from __future__ import annotations

import io
import zlib

_CHUNK = 1 << 20


class Gunzip(io.RawIOBase):
    """A gzip file's data, member after member as ``gzip -d`` reads it, that notes how the file ends instead of
    raising: ``damage`` when a member ends early or bytes that are not gzip follow one, ``padding`` when zero
    bytes follow a member (allowed by gzip, refused by DuckDB's reader, so the parser then gets a copy).

    zlib is fed the compressed bytes directly (``gzip.open`` drops the last partial block it decoded when the
    stream ends early), with a bounded output per call (a small file can inflate to gigabytes)."""

    def __init__(self, fh) -> None:
        super().__init__()
        self._fh = fh
        self._decoder = None
        self._input = b""
        self._output = memoryview(b"")
        self.written = 0
        self.members = 0
        self.padding = False
        self.damage: str | None = None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._fh.close()
        super().close()

    def readinto(self, buffer) -> int:
        while not self._output:
            if not self._decode():
                return 0
        size = min(len(buffer), len(self._output))
        buffer[:size] = self._output[:size]
        self._output = self._output[size:]
        return size

    def _read(self) -> bool:
        data = self._fh.read(_CHUNK)
        self._input += data
        return bool(data)

    def _decode(self) -> bool:
        """Decode the next piece into ``_output``; False at the end of what can be read."""
        if self.damage is not None:
            return False
        if self._decoder is None:  # between members: zero padding, then another member or the end
            while not self._input.strip(b"\0"):
                self.padding |= bool(self._input)
                self._input = b""
                if not self._read():
                    return False
            stripped = self._input.lstrip(b"\0")
            self.padding |= len(stripped) < len(self._input)
            self._input = stripped
            self._decoder = zlib.decompressobj(wbits=31)
            self.members += 1
        if not self._input and not self._read():
            self.damage = f"compressed stream ends early, after {self.written:,} bytes of data (a truncated file)"
            return False
        try:
            self._output = memoryview(self._decoder.decompress(self._input, _CHUNK))
        except zlib.error as exc:
            self.damage = f"compressed data is corrupt after {self.written:,} bytes of data ({exc})"
            return False
        self.written += len(self._output)
        if self._decoder.eof:
            self._input, self._decoder = self._decoder.unused_data, None
        else:
            self._input = self._decoder.unconsumed_tail
        return True
