"""`make bench`: run every benchmark module in bench/ and print its figures."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]))
    selected = sys.argv[1:] or names
    for name in selected:
        if name.startswith("_") or name == "harness":
            continue
        print(f"\n== bench/{name}.py ==", flush=True)
        importlib.import_module(f"bench.{name}").run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
