"""The zipped Lambda bundle (app + layer) that `make package` built, against its target."""

from __future__ import annotations

from bench.harness import show
from infra.bundle import LIMIT_BYTES, mb, sizes


def run() -> None:
    measured = sizes()
    zipped = sum(z for z, _ in measured.values())
    unpacked = sum(u for _, u in measured.values())
    show(f"Lambda bundle, app + layer, zipped   [target <= {mb(LIMIT_BYTES)}]", mb(zipped))
    for name, (packed, size) in measured.items():
        show(f"  {name}", f"{mb(packed)} zipped, {mb(size)} unpacked")
    show("  unpacked in all (Lambda's limit: 250 MB)", mb(unpacked))
