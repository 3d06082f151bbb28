"""This machine: its processes and its ports (used by the local adapters, the local stack,
the end-to-end tests and the benchmarks)."""
