"""The local stack's record of what it started: `.paysaga/stack.json`, written atomically under a file lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from local.aws_names import LOCAL_REGION


def stack_dir() -> Path:
    """`PAYSAGA_STACK_DIR`, else `.paysaga` in the current directory (git-ignored)."""
    return Path(os.environ.get("PAYSAGA_STACK_DIR") or Path.cwd() / ".paysaga").resolve()


@dataclass
class Part:
    name: str
    url: str
    pid: int | None = None  # None for a part we did not start (external) or one managed by pg_ctl
    port: int | None = None
    external: bool = False


def new_secrets() -> dict[str, str]:
    """The local gateways' credentials and webhook secrets: made at random for each stack, never the real ones (which
    live in Secrets Manager on AWS). `paysaga stack env` prints them, so a tester can sign webhook events."""
    return {
        "STRIPE_API_KEY": "sk_test_local_" + secrets.token_hex(12),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24),
        "ADYEN_API_KEY": "AQE_local_" + secrets.token_hex(16),
        "ADYEN_MERCHANT_ACCOUNT": "PaysagaLocalECOM",
        "ADYEN_HMAC_KEY": secrets.token_hex(32).upper(),
    }


@dataclass
class StackState:
    parts: dict[str, Part] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=new_secrets)
    api_port: int | None = None  # chosen before the API starts: the local gateways deliver webhooks to it

    def env(self) -> dict[str, str]:
        """The environment every process of the local stack runs with (same names as the Lambda functions get)."""
        env: dict[str, str] = {}
        names = {"postgres": "DATABASE_URL", "redis": "REDIS_URL", "aws": "AWS_ENDPOINT_URL",
                 "gateway": "SANDBOX_GATEWAY_URL", "stripe": "STRIPE_API_BASE", "adyen": "ADYEN_CHECKOUT_URL"}
        for key, variable in names.items():
            if key in self.parts:
                env[variable] = self.parts[key].url
        env.update(self.secrets)
        # Merchant webhooks to loopback (a receiver on this machine: tests, demos); refused on AWS (SSRF).
        env["WEBHOOKS_ALLOW_LOOPBACK"] = "true"
        if "api" in self.parts and self.parts["api"].port is not None:
            env["PAYSAGA_API_PORT"] = str(self.parts["api"].port)
        if "aws" in self.parts and not self.parts["aws"].external:
            # The emulator accepts any credentials; these are not secrets, and never reach AWS.
            env.setdefault("AWS_ACCESS_KEY_ID", "local")
            env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
            env.setdefault("AWS_REGION", LOCAL_REGION)
            env.setdefault("AWS_DEFAULT_REGION", LOCAL_REGION)
        return env


def state_file(root: Path) -> Path:
    return root / "stack.json"


def load(root: Path) -> StackState:
    path = state_file(root)
    if not path.exists():
        return StackState()
    raw = json.loads(path.read_text())
    parts = {name: Part(**part) for name, part in raw.get("parts", {}).items()}
    state = StackState(parts=parts, api_port=raw.get("api_port"))
    if "secrets" in raw:
        state.secrets = raw["secrets"]
    return state


def save(root: Path, state: StackState) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = state_file(root).with_suffix(".tmp")
    tmp.touch(mode=0o600)  # it holds the local gateways' secrets
    tmp.chmod(0o600)
    tmp.write_text(json.dumps({"parts": {k: asdict(v) for k, v in state.parts.items()}, "secrets": state.secrets,
                               "api_port": state.api_port}, indent=2))
    tmp.replace(state_file(root))


def clear(root: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_file(root).unlink()


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """One `up`/`down` at a time per stack folder."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "stack.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
