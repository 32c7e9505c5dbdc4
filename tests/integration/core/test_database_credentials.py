"""On AWS the database password comes from Secrets Manager, never from the environment."""

from __future__ import annotations

import json

from core.aws import client
from core.db import database_url
from core.settings import Settings


def test_the_secret_supplies_user_and_password(dynamo_settings: Settings) -> None:
    secrets = client("secretsmanager", dynamo_settings)
    arn = secrets.create_secret(Name="paysaga/db", SecretString=json.dumps(
        {"username": "app_user", "password": "p@ss:w/rd", "host": "ignored"}))["ARN"]
    settings = dynamo_settings.model_copy(update={
        "database_url": dynamo_settings.database_url.__class__("postgresql://nobody@proxy.example:5432/paysaga"),
        "database_secret_arn": arn,
    })
    url = database_url(settings)
    assert url.startswith("postgresql+psycopg://app_user:")
    assert url.endswith("@proxy.example:5432/paysaga")
    assert "p%40ss%3Aw%2Frd" in url  # the password is URL-encoded, not pasted raw


def test_without_a_secret_the_url_is_used_as_given(dynamo_settings: Settings) -> None:
    assert database_url(dynamo_settings) == "postgresql+psycopg://unused@127.0.0.1:1/unused"
