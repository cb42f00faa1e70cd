"""Maintainer tool: re-create ``vendor/`` from the npm registry (``python -m expectations.data_docs.vendor``).

Needs ``npm`` and the registry; segflow itself never runs this (nothing is downloaded at run time). Each
tarball is checked against the integrity hash in :mod:`expectations.data_docs.assets` before a file is taken
from it, so re-vendoring gives the same bytes or fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from expectations.data_docs.assets import PACKAGES, VENDOR_DIR, Package


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def vendor_package(package: Package, workdir: Path, target: Path = VENDOR_DIR) -> list[Path]:
    out = subprocess.run(["npm", "pack", f"{package.name}@{package.version}", "--json", "--pack-destination",
                          str(workdir)], capture_output=True, text=True, check=True)
    tarball = workdir / json.loads(out.stdout)[0]["filename"]
    if _integrity(tarball) != package.integrity:
        raise SystemExit(f"{package.name}@{package.version}: tarball does not match the recorded integrity hash")
    folder = target / package.folder
    wanted = list(package.files) + ([package.licence_file] if package.licence_file else [])
    written = []
    with tarfile.open(tarball) as tar:
        for path in wanted:
            member = tar.extractfile(f"package/{path}")
            if member is None:
                raise SystemExit(f"{package.name}@{package.version}: {path} is not in the tarball")
            dest = folder / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(member.read())
            written.append(dest)
    if package.licence_file is None and not (folder / "LICENSE").exists():
        raise SystemExit(f"{package.name}@{package.version} ships no licence file: add {folder}/LICENSE by hand "
                         "(see vendor/README.md)")
    return written


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for package in PACKAGES:
            for path in vendor_package(package, Path(tmp)):
                print(path.relative_to(VENDOR_DIR))
    return 0


if __name__ == "__main__":
    if shutil.which("npm") is None:
        sys.exit("npm is needed to re-vendor the Data Docs assets")
    sys.exit(main())
