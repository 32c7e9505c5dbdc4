"""Build the Lambda dependency layer from pyproject.toml's `[project].dependencies` only, and print its size.

    .venv/bin/python scripts/build_layer.py [--out dist/dependencies-layer.zip]

The layer is `python/` with what `pip install --target` puts there for the functions' platform (CPython
LAMBDA_PYTHON on arm64: manylinux2014_aarch64 wheels only, never a build from source), zipped; the CDK app takes it
as context `dependencies_layer_zip` (cdk.json names the default path) and refuses to synthesize without it. `make
layer` runs this when pyproject.toml changes (pip's cache keeps a rebuild to seconds).

Lambda refuses a function whose code and layers unzip to more than LAMBDA_UNZIPPED_LIMIT_BYTES; this exits 1 when
the layer alone passes LAYER_BUDGET_BYTES, well under it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path
from typing import Final

PROJECT_ROOT: Final[Path] = Path(__file__).resolve().parents[1]
DEFAULT_OUT: Final[Path] = PROJECT_ROOT / "dist" / "dependencies-layer.zip"
LAMBDA_UNZIPPED_LIMIT_BYTES: Final[int] = 262_144_000  # function code + every layer, unzipped
# The layer's budget: half the limit, so the code asset (about 2 MB) and a dependency or two more fit with room.
# Measured: 84 MB unzipped (botocore, stripe and sqlalchemy are half of it).
LAYER_BUDGET_BYTES: Final[int] = LAMBDA_UNZIPPED_LIMIT_BYTES // 2
# infra/code_asset.py's RUNTIME (the CDK app cannot import this script): the newest Python Lambda runs for which every
# runtime dependency publishes an aarch64 wheel (checked with `pip download --platform ... --only-binary=:all:`).
LAMBDA_PYTHON: Final[str] = "3.14"
LAMBDA_PLATFORM: Final[str] = "manylinux2014_aarch64"
# Byte code pip compiled with this machine's interpreter: of no use to Lambda's (another Python version).
SKIPPED_PARTS: Final[frozenset[str]] = frozenset({"__pycache__"})

assert LAYER_BUDGET_BYTES <= LAMBDA_UNZIPPED_LIMIT_BYTES // 2, "the layer must stay well under Lambda's limit"


def runtime_dependencies() -> list[str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def install(target: Path, requirements: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target),
         "--platform", LAMBDA_PLATFORM, "--python-version", LAMBDA_PYTHON, "--implementation", "cp",
         "--only-binary=:all:", "--upgrade", *requirements],
        check=True,
    )


def size_of(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*")
               if path.is_file() and not SKIPPED_PARTS.intersection(path.parts))


def unzipped_size(layer_zip: Path) -> int:
    """What Lambda counts against its limit: the layer's files, uncompressed."""
    with zipfile.ZipFile(layer_zip) as archive:
        return sum(info.file_size for info in archive.infolist())


def build(out: Path, requirements: list[str]) -> int:
    """Install `requirements` for the Lambda platform into `python/`, zip it to `out`; the unzipped size in bytes."""
    with tempfile.TemporaryDirectory(prefix="paysaga-layer-") as work:
        python = Path(work) / "python"
        install(python, requirements)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(python.rglob("*")):
                if path.is_file() and not SKIPPED_PARTS.intersection(path.parts):
                    # A fixed timestamp: the same dependencies make the same zip, so the asset hash (and the
                    # deployed layer version) changes only when they do.
                    info = zipfile.ZipInfo(str(path.relative_to(work)), date_time=(1980, 1, 1, 0, 0, 0))
                    info.external_attr = (path.stat().st_mode & 0o777) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, path.read_bytes())
        partial.replace(out)  # never leave a half-written layer where the CDK app looks for it
    return unzipped_size(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    requirements = runtime_dependencies()
    unzipped = build(args.out, requirements)
    zipped = args.out.stat().st_size
    print(f"runtime dependencies (Python {LAMBDA_PYTHON}, {LAMBDA_PLATFORM}): {', '.join(requirements)}")
    print(f"layer {args.out}: {unzipped / 1e6:.1f} MB unzipped, {zipped / 1e6:.1f} MB zipped "
          f"(budget {LAYER_BUDGET_BYTES / 1e6:.0f} MB; Lambda's limit {LAMBDA_UNZIPPED_LIMIT_BYTES / 1e6:.0f} MB "
          f"for code and layers together)")
    if unzipped > LAYER_BUDGET_BYTES:
        args.out.unlink()
        print("the layer is over its budget: drop a dependency the functions do not import", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
