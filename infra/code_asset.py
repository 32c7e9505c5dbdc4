"""The one Lambda code asset: the runtime packages of the repository, nothing else (no tests, venv, node_modules).

Dependencies are not bundled here (bundling needs Docker): `scripts/build_layer.py` builds them into a layer zip for
the Lambda runtime from pyproject.toml's runtime dependencies alone (the local tooling's are an extra) and prints its
size; the deployment passes it as context `dependencies_layer_zip`.
"""

from __future__ import annotations

from aws_cdk import IgnoreMode
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.paths import REPO_ROOT, RUNTIME_PACKAGES

RUNTIME = lambda_.Runtime.PYTHON_3_12


def asset_excludes() -> list[str]:
    """Exclude everything, re-include the runtime packages, then drop byte code and any nested tests."""
    patterns = ["*"]
    for package in RUNTIME_PACKAGES:
        patterns += [f"!{package}", f"!{package}/**"]
    # Hidden entries (.git, .venv, caches) are not matched by "*": exclude them by name.
    patterns += [".*", "**/.*", "**/__pycache__", "**/*.pyc", "**/tests"]
    return patterns


def runtime_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(REPO_ROOT), exclude=asset_excludes(), ignore_mode=IgnoreMode.GLOB)


def dependencies_layer(scope: Construct, zip_path: str) -> lambda_.ILayerVersion | None:
    """The CI-built dependencies layer (a zip with `python/` at its root), or None when not given."""
    if not zip_path:
        return None
    return lambda_.LayerVersion(
        scope, "Dependencies",
        code=lambda_.Code.from_asset(zip_path),
        compatible_runtimes=[RUNTIME],
        description="paysaga Python dependencies (pip install . into python/, built in CI for the Lambda runtime)",
    )
