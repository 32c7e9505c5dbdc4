"""Where the CDK app finds the repository's files: the Lambda code and the one state machine definition."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO_ROOT: Final[Path] = Path(__file__).resolve().parent.parent
STATE_MACHINE_FILE: Final[Path] = REPO_ROOT / "statemachine.asl.json"
MIGRATIONS_DIR: Final[Path] = REPO_ROOT / "migrations"

# The runtime packages a Lambda function imports; everything else in the repository stays out of the asset.
# `admin` runs on AWS only (the migration custom resource, merchant administration).
RUNTIME_PACKAGES: Final[tuple[str, ...]] = ("core", "saga", "steps", "ledger", "store", "admin")
# What the migration function adds at its asset's root, beside the packages: alembic's configuration and scripts.
MIGRATION_FILES: Final[tuple[str, ...]] = ("migrations", "alembic.ini")
