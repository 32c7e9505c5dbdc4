"""Where the CDK app finds the repository's files: the Lambda code and the state machine definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from steps.registry import DEFINITION_FILES, Workflow

REPO_ROOT: Final[Path] = Path(__file__).resolve().parent.parent


def definition_file(workflow: Workflow) -> Path:
    """A workflow's ASL definition (steps.registry.DEFINITION_FILES, at the repository's root)."""
    return REPO_ROOT / DEFINITION_FILES[workflow]


STATE_MACHINE_FILE: Final[Path] = definition_file(Workflow.PAYMENT)  # the payment saga's
MIGRATIONS_DIR: Final[Path] = REPO_ROOT / "migrations"

# The runtime packages a Lambda function imports; everything else in the repository stays out of the asset.
# `admin` runs on AWS only (the migration custom resource, merchant administration).
RUNTIME_PACKAGES: Final[tuple[str, ...]] = ("core", "saga", "steps", "ledger", "store", "admin")
# What the migration function adds at its asset's root, beside the packages: alembic's configuration and scripts.
MIGRATION_FILES: Final[tuple[str, ...]] = ("migrations", "alembic.ini")
