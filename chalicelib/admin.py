"""Operator commands. By default they act on the local stack's moto endpoint; with
`--aws` they use the standard AWS configuration of the shell.

    python -m chalicelib.admin create-workspace --name NAME [--tier TIER]
"""

from __future__ import annotations

import argparse
import json
import sys

from chalicelib.tiers import TIER_NAMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.admin")
    parser.add_argument("--aws", action="store_true", help="act on AWS, not the local stack")
    commands = parser.add_subparsers(dest="command", required=True)
    workspace = commands.add_parser("create-workspace", help="create a workspace and its key")
    workspace.add_argument("--name", required=True)
    workspace.add_argument("--tier", choices=TIER_NAMES, default="free")
    args = parser.parse_args(argv)

    if not args.aws:
        from chalicelib.local import env

        env.apply()

    from botocore.exceptions import EndpointConnectionError

    from chalicelib import workspaces

    if not 1 <= len(args.name.strip()) <= 255:
        parser.error("--name must be 1 to 255 characters")
    try:
        if args.command == "create-workspace":
            created, key = workspaces.create_with_key(args.name.strip(), args.tier)
            print(json.dumps({"workspace_id": created["id"], "api_key": key}))
    except EndpointConnectionError:
        print("error: the local stack is not running: start it with `make run`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
