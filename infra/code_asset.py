"""The Lambda code assets and the dependencies layer.

- `runtime_code()`: every function's code, the runtime packages of the repository (infra/paths.py RUNTIME_PACKAGES)
  and nothing else (no tests, local tooling, venv, node_modules).
- `migration_code()`: the migration function's code, the same packages plus `migrations/` and `alembic.ini` at the
  asset root beside them (admin.migrate runs `alembic upgrade head` from there). A separate asset, so a new migration
  changes only the migration function's code, and the other functions never carry the schema history.
- `dependencies_layer()`: the runtime dependencies, built by `make layer` (scripts/build_layer.py: pip for arm64 and
  RUNTIME, from pyproject.toml's `[project].dependencies` alone) into a zip the app takes as context
  `dependencies_layer_zip` (cdk.json names the default). Bundling here would need Docker; a missing zip stops the
  synthesis, since functions without their dependencies cannot even import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aws_cdk import IgnoreMode
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.paths import MIGRATION_FILES, REPO_ROOT, RUNTIME_PACKAGES

# The newest Python Lambda runs that aws-cdk-lib knows and every runtime dependency has aarch64 wheels for
# (scripts/build_layer.py LAMBDA_PYTHON names the same version; tests/unit/infra compares them).
RUNTIME: Final[lambda_.Runtime] = lambda_.Runtime.PYTHON_3_14
# Graviton: about 20% cheaper per GB-second than x86 at equal or better speed for this I/O-bound code.
ARCHITECTURE: Final[lambda_.Architecture] = lambda_.Architecture.ARM_64
LAYER_CONTEXT_KEY: Final[str] = "dependencies_layer_zip"
LAYER_MAKE_TARGET: Final[str] = "make layer"


class MissingLayerError(RuntimeError):
    """The dependencies layer zip is not where the context says: synthesis stops instead of deploying broken code."""


def asset_excludes(extra_entries: tuple[str, ...] = ()) -> list[str]:
    """Exclude everything, re-include the runtime packages (and `extra_entries`), then drop byte code and tests."""
    patterns = ["*"]
    for entry in (*RUNTIME_PACKAGES, *extra_entries):
        patterns += [f"!{entry}", f"!{entry}/**"]
    # Hidden entries (.git, .venv, caches) are not matched by "*": exclude them by name.
    patterns += [".*", "**/.*", "**/__pycache__", "**/*.pyc", "**/tests"]
    return patterns


def runtime_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(REPO_ROOT), exclude=asset_excludes(), ignore_mode=IgnoreMode.GLOB)


def migration_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(REPO_ROOT), exclude=asset_excludes(MIGRATION_FILES),
                                   ignore_mode=IgnoreMode.GLOB)


def layer_zip_path(configured: str) -> Path:
    """The layer zip the context names (relative paths from the repository root); raises when it is missing."""
    if not configured:
        raise MissingLayerError(
            f"context {LAYER_CONTEXT_KEY!r} is empty: the functions need their dependencies layer. Run "
            f"`{LAYER_MAKE_TARGET}` and pass its zip (`-c {LAYER_CONTEXT_KEY}=dist/dependencies-layer.zip`).")
    path = Path(configured)
    path = path if path.is_absolute() else REPO_ROOT / path
    if not path.is_file():
        raise MissingLayerError(
            f"context {LAYER_CONTEXT_KEY!r} names {path}, which does not exist: run `{LAYER_MAKE_TARGET}` to build "
            "the dependencies layer (functions without it cannot import).")
    return path


def dependencies_layer(scope: Construct, zip_path: str) -> lambda_.LayerVersion:
    """The dependencies layer (a zip with `python/` at its root), built by `make layer`."""
    return lambda_.LayerVersion(
        scope, "Dependencies",
        code=lambda_.Code.from_asset(str(layer_zip_path(zip_path))),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=f"paysaga runtime dependencies (pyproject.toml [project].dependencies, {RUNTIME.name} arm64)",
    )
