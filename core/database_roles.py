"""The database's roles, written once: the migrations grant to them, the deploy function creates their login users,
the CDK app names their secrets.

Standard library only: infra imports this module.

- OWNER owns every table, view and function: migrations run as it (never a superuser at run time).
- APP is what every Lambda function and the local service connect as (a NOLOGIN group; the login user FUNCTIONS_USER
  is a member): DML on the tables it needs and nothing else (no DDL, no TRUNCATE, not the owner, so it cannot disable
  or drop a trigger).
- FINANCE reads the finance views only (migration 0002).
"""

from __future__ import annotations

from typing import Final

OWNER_ROLE: Final[str] = "paysaga_owner"
APP_ROLE: Final[str] = "paysaga_app"
FINANCE_ROLE: Final[str] = "paysaga_finance"
# The login user the functions connect as (member of APP_ROLE); its password lives in its own secret.
FUNCTIONS_USER: Final[str] = "paysaga_functions"
