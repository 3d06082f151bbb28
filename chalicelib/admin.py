"""Operator commands. By default they act on the local stack's moto endpoint; with
`--aws` they use the standard AWS configuration of the shell.

    python -m chalicelib.admin create-workspace --name NAME [--tier TIER]
    python -m chalicelib.admin create-partner --name NAME [--tier TIER]
    python -m chalicelib.admin add-member --workspace WS --user SUB [--role ROLE]
    python -m chalicelib.admin remove-member --workspace WS --user SUB

Each prints one JSON object on success.
"""

from __future__ import annotations

import argparse
import json
import sys

from chalicelib.core.scopes import ROLE_NAMES
from chalicelib.core.tiers import TIER_NAMES
from chalicelib.store.errors import Missing


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.admin")
    parser.add_argument("--aws", action="store_true", help="act on AWS, not the local stack")
    commands = parser.add_subparsers(dest="command", required=True)
    workspace = commands.add_parser("create-workspace", help="create a workspace and its key")
    workspace.add_argument("--name", required=True)
    workspace.add_argument("--tier", choices=TIER_NAMES, default="free")
    partner = commands.add_parser("create-partner", help="create a partner and its key")
    partner.add_argument("--name", required=True)
    partner.add_argument(
        "--tier",
        choices=TIER_NAMES,
        default="agency",
        help="rate limit of the partner's requests that name no workspace",
    )
    member = commands.add_parser("add-member", help="give a user (JWT sub) a role in a workspace")
    member.add_argument("--workspace", required=True)
    member.add_argument("--user", required=True, help="the user's `sub` claim")
    member.add_argument("--role", choices=ROLE_NAMES, default="developer")
    removal = commands.add_parser("remove-member", help="take a user out of a workspace")
    removal.add_argument("--workspace", required=True)
    removal.add_argument("--user", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    name = getattr(args, "name", None)
    if name is not None and not 1 <= len(name.strip()) <= 255:
        parser.error("--name must be 1 to 255 characters")
    user = getattr(args, "user", None)
    if user is not None and not 1 <= len(user) <= 255:
        parser.error("--user must be 1 to 255 characters")

    if not args.aws:
        from chalicelib.local import env

        env.apply()

    from botocore.exceptions import EndpointConnectionError

    from chalicelib.accounts import workspaces
    from chalicelib.core.errors import NotFound
    from chalicelib.identity import partners

    try:
        if args.command == "create-workspace":
            created, key = workspaces.create_with_key(name.strip(), args.tier)
            result = {"workspace_id": created["id"], "api_key": key}
        elif args.command == "create-partner":
            partner, key = partners.create_with_key(name.strip(), args.tier)
            result = {"partner_id": partner["id"], "api_key": key}
        elif args.command == "add-member":
            workspaces.add_member(args.workspace, args.user, args.role)
            result = {"workspace_id": args.workspace, "user": args.user, "role": args.role}
        else:
            workspaces.remove_member(args.workspace, args.user)
            result = {"workspace_id": args.workspace, "user": args.user, "removed": True}
    except EndpointConnectionError:
        print("error: the local stack is not running: start it with `make run`", file=sys.stderr)
        return 1
    except (NotFound, Missing) as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
