"""The settings of the administration functions: the runtime's, plus the secrets only they read.

They never touch Redis, so REDIS_URL may be absent here (its placeholder is never dialled).
"""

from __future__ import annotations

from pydantic import Field, ValidationError

from core.settings import Settings, SettingsError

UNUSED_REDIS_URL = "redis://unused.invalid:6379/0"


class AdminSettings(Settings):
    redis_url: str = Field(default=UNUSED_REDIS_URL, validation_alias="REDIS_URL")
    # The cluster's generated secret (JSON username, password, host, port, dbname): the deploy function runs the role
    # setup as this user.
    database_master_secret_arn: str | None = Field(default=None, validation_alias="DATABASE_MASTER_SECRET_ARN")
    # paysaga_owner's secret (JSON username, password): migrations run as it.
    database_owner_secret_arn: str | None = Field(default=None, validation_alias="DATABASE_OWNER_SECRET_ARN")


def load_admin_settings() -> AdminSettings:
    """Read the settings now; raise SettingsError naming each bad variable."""
    try:
        return AdminSettings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as error:
        problems = []
        for item in error.errors():
            if not item["loc"]:
                problems.append(str(item["msg"]).removeprefix("Value error, "))
                continue
            field = AdminSettings.model_fields.get(str(item["loc"][0]))
            alias = field.validation_alias if field is not None and isinstance(field.validation_alias, str) else None
            name = (alias or str(item["loc"][0])).upper()
            reason = "is not set" if item["type"] == "missing" else f"is malformed: {item['msg']}"
            problems.append(f"{name} {reason}")
        raise SettingsError(f"configuration error: {'; '.join(problems)}") from None
