"""Build the Lambda dependency layer from pyproject.toml's runtime dependencies only, and print its size.

    .venv/bin/python scripts/build_layer.py [--out dist/dependencies-layer.zip]

The layer is `python/` with what `pip install --target` puts there for the Lambda runtime (Python 3.12, manylinux
x86_64 wheels), zipped; the CDK app takes it as context `dependencies_layer_zip`. Lambda refuses a function whose
code and layers unzip to more than 262,144,000 bytes; this exits 1 when the layer alone passes LAYER_BUDGET_BYTES.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LAMBDA_UNZIPPED_LIMIT_BYTES = 262_144_000
# Well under the limit: the function code and later dependencies need the rest.
LAYER_BUDGET_BYTES = 150 * 1024 * 1024
LAMBDA_PYTHON = "3.12"
LAMBDA_PLATFORM = "manylinux2014_x86_64"

assert LAYER_BUDGET_BYTES < LAMBDA_UNZIPPED_LIMIT_BYTES


def runtime_dependencies() -> list[str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def install(target: Path, requirements: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target),
         "--platform", LAMBDA_PLATFORM, "--python-version", LAMBDA_PYTHON, "--implementation", "cp",
         "--only-binary=:all:", *requirements],
        check=True,
    )


def size_of(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "dist" / "dependencies-layer.zip")
    args = parser.parse_args(argv)
    requirements = runtime_dependencies()
    with tempfile.TemporaryDirectory(prefix="paysaga-layer-") as work:
        python = Path(work) / "python"
        install(python, requirements)
        unzipped = size_of(python)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(args.out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(python.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    archive.write(path, path.relative_to(work))
    zipped = args.out.stat().st_size
    print(f"runtime dependencies: {', '.join(requirements)}")
    print(f"layer {args.out}: {unzipped / 1e6:.1f} MB unzipped, {zipped / 1e6:.1f} MB zipped "
          f"(budget {LAYER_BUDGET_BYTES / 1e6:.0f} MB; Lambda's limit {LAMBDA_UNZIPPED_LIMIT_BYTES / 1e6:.0f} MB "
          f"for code and layers together)")
    if unzipped > LAYER_BUDGET_BYTES:
        print("the layer is over its budget: drop a dependency the functions do not import", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
