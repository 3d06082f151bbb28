"""Slugs derived from names: lowercase ASCII letters, digits and single hyphens."""

from __future__ import annotations

import re
import unicodedata


def slugify(name: str, fallback: str) -> str:
    """`My Café!` -> `my-cafe`; `fallback` when nothing of the name survives."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:63].strip("-")
    return slug or fallback
