"""The structured JSON logger (Powertools), created on first use to keep imports light."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def logger() -> Any:
    from aws_lambda_powertools import Logger

    return Logger(service="shipyard")
