"""Is each part of the stack answering? One short, bounded probe per part."""

from __future__ import annotations

import urllib.error
import urllib.request

from local.aws_names import LOCAL_REGION

PROBE_TIMEOUT_S = 3


def postgres(url: str) -> str | None:
    """None when healthy, else the reason in one line."""
    import psycopg  # noqa: PLC0415

    try:
        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=PROBE_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None


def redis(url: str) -> str | None:
    import redis as redis_lib  # noqa: PLC0415

    client = redis_lib.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S)
    try:
        client.ping()
    except redis_lib.RedisError as error:
        return str(error) or type(error).__name__
    finally:
        client.close()
    return None


def aws(url: str) -> str | None:
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    config = Config(connect_timeout=PROBE_TIMEOUT_S, read_timeout=PROBE_TIMEOUT_S, retries={"max_attempts": 1})
    try:
        boto3.session.Session().client(
            "dynamodb", endpoint_url=url, region_name=LOCAL_REGION, config=config,
            aws_access_key_id="local", aws_secret_access_key="local",  # noqa: S106  # emulator only, not a secret
        ).list_tables(Limit=1)
    except (BotoCoreError, ClientError) as error:
        return str(error)
    return None


def http(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:  # noqa: S310  # loopback URL we built
            return None if response.status == 200 else f"HTTP {response.status}"
    except (urllib.error.URLError, OSError) as error:
        return str(error)


def redact(url: str) -> str:
    """A URL fit for a log line: the password, if any, replaced."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    auth, _, host = rest.rpartition("@")
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in auth else f"{scheme}://{user}@{host}"
