"""The size of what `make package` ships to Lambda: the app's zip and its layer's.

    python -m infra.bundle      # prints the sizes; exits 1 over the limit

Lambda accepts 250 MB unpacked; the 20 MB zipped limit is Shipyard's own, for cold starts
and upload time (see docs/aws.md).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "build" / "out"
ZIPS = ("deployment.zip", "layer-deployment.zip")
LIMIT_BYTES = 20 * 1000 * 1000


def sizes(out: Path = OUT) -> dict[str, tuple[int, int]]:
    """(zipped, unpacked) bytes of each zip of the package."""
    found = {}
    for name in ZIPS:
        path = out / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make package` first")
        with zipfile.ZipFile(path) as archive:
            found[name] = (path.stat().st_size, sum(i.file_size for i in archive.infolist()))
    return found


def mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def main() -> int:
    measured = sizes()
    zipped = sum(z for z, _ in measured.values())
    for name, (packed, unpacked) in measured.items():
        print(f"{name}: {mb(packed)} zipped, {mb(unpacked)} unpacked")
    print(f"bundle: {mb(zipped)} zipped (limit {mb(LIMIT_BYTES)})")
    return 0 if zipped <= LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
