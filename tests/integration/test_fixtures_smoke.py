"""The shared fixtures give each test real, isolated servers."""

from __future__ import annotations

import psycopg
import redis

from core.aws import client
from core.settings import Settings


def test_each_test_gets_its_own_database(database_url: str) -> None:
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        conn.execute("CREATE TABLE scratch (x int)")
        conn.execute("INSERT INTO scratch VALUES (1)")
        assert conn.execute("SELECT count(*) FROM scratch").fetchone() == (1,)


def test_the_next_test_does_not_see_it(database_url: str) -> None:
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT to_regclass('public.scratch')").fetchone()
        assert row == (None,)


def test_redis_is_flushed_between_tests(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    assert r.dbsize() == 0
    r.set("left-behind", "1")


def test_emulator_provisioned_with_the_production_names(app_settings: Settings) -> None:
    tables = client("dynamodb", app_settings).list_tables()["TableNames"]
    assert app_settings.idempotency_table in tables
    assert app_settings.worker_slots_table in tables
    sqs = client("sqs", app_settings)
    assert sqs.get_queue_url(QueueName=app_settings.notifications_queue)["QueueUrl"]
