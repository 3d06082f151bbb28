"""The deployment status table: every status, where each may be reached from, and the sets
the rest of Shipyard asks about. The one place they are spelled out.

    pending -> building -> built -> deploying -> running -> stopped
         \\________\\__________\\________\\-> failed | canceled

Each move is one conditional write naming the statuses it may come from (store/
deployments.py), so a late, repeated or concurrent event can never move a deployment back.
"""

from __future__ import annotations

STATUSES = ("pending", "building", "built", "deploying", "running", "failed", "stopped", "canceled")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "building": ("pending",),
    "built": ("building",),
    "deploying": ("built",),
    # A running deployment fails when it crashed too often (run.auto_rollback).
    "failed": ("pending", "building", "built", "deploying", "running"),
    "canceled": ("pending", "building", "built", "deploying"),
    "stopped": ("running",),
}
# Moves made only by whoever names the status they come from (only_from): a running
# deployment fails only when the supervisor says it crashed too often.
NAMED_ONLY: dict[str, tuple[str, ...]] = {"failed": ("running",)}
# The pipeline still works on it: it can be canceled, and the sweeper times it out.
ACTIVE = ("pending", "building", "built", "deploying")
# Listed by the sparse `by_active_status` index: the active ones and the running one.
INDEXED = (*ACTIVE, "running")
# Nothing more happens to it in the pipeline, and its log is complete: the line of the move
# to one of these is its last (a running app's later output is not part of it).
ENDED = ("running", "failed", "canceled", "stopped")
# Holds one of its workspace's concurrent-build slots.
HOLDS_SLOT = ("pending", "building")
