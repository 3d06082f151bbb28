"""The size of what `make package` ships to Lambda: the app's zip and its layer's.

    python -m infra.bundle      # prints the sizes; exits 1 over the limit, or if the
                                # layer holds what only the build or the tests need

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
# What must not reach the layer: the packaging tool and what it pulls in (chalice vendors
# its runtime, chalice/app.py, into the app), boto3 (the Lambda runtime's is used:
# docs/aws.md), and the tests' and the local stack's tools.
BUILD_AND_TEST_ONLY = (
    "chalice",
    "pip",
    "setuptools",
    "wcwidth",
    "blessed",
    "yaml",
    "boto3",
    "botocore",
    "s3transfer",
    "moto",
    "waitress",
    "pytest",
    "cfn_lint",
    "checkov",
)
LAYER_SITE = "python/lib/python3.11/site-packages/"


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


def build_and_test_packages(layer: Path) -> list[str]:
    """The top-level packages of the layer that only the build or the tests need."""
    with zipfile.ZipFile(layer) as archive:
        top = {
            name.removeprefix(LAYER_SITE).split("/")[0].removesuffix(".py")
            for name in archive.namelist()
            if name.startswith(LAYER_SITE)
        }
    return sorted(top & set(BUILD_AND_TEST_ONLY))


def mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def main() -> int:
    measured = sizes()
    zipped = sum(z for z, _ in measured.values())
    for name, (packed, unpacked) in measured.items():
        print(f"{name}: {mb(packed)} zipped, {mb(unpacked)} unpacked")
    print(f"bundle: {mb(zipped)} zipped (limit {mb(LIMIT_BYTES)})")
    shipped = build_and_test_packages(OUT / "layer-deployment.zip")
    if shipped:
        print(f"layer-deployment.zip ships what only the build or the tests need: {shipped}")
    return 0 if zipped <= LIMIT_BYTES and not shipped else 1


if __name__ == "__main__":
    sys.exit(main())
