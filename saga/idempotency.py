"""The idempotency gate (DESIGN 4; IETF draft "The Idempotency-Key HTTP Header Field") on DynamoDB.

One item per (merchant, key), under pk = sha256(merchant_id NUL key). The first request wins a conditional PutItem
and holds the key IN_PROGRESS together with the payload fingerprint, the payment id and an in-progress expiry;
each holder gets its own ULID token, so only the current holder can complete or abandon. A holder that died is
taken over after the in-progress expiry by a conditional update on its token that keeps the stored payment id,
so the resumed saga reuses every step's earlier effect. The final HTTP response is stored byte for byte.

Records live 24 h (DynamoDB TTL on `expires_at`, epoch seconds); TTL deletion is lazy, so a record past
`expires_at` is treated as absent here too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from ulid import ULID

from core.clock import ClockMs, wall_clock_ms

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
RECORD_TTL_S = 24 * 60 * 60
# The Express workflow's ceiling (5 min) plus a margin for the handler around it: a holder older than this died.
DEFAULT_IN_PROGRESS_TTL_MS = 5 * 60 * 1000 + 30_000
MAX_KEY_LENGTH = 255
# Rounds of put / read / take-over in one begin(); each lost round means another request changed the record.
MAX_BEGIN_ROUNDS = 4



class InvalidIdempotencyKeyError(ValueError):
    """The Idempotency-Key is missing, empty or too long (the handler answers 400)."""


class NotHolderError(RuntimeError):
    """complete() by a request that no longer holds the key (its in-progress expiry passed and it was resumed)."""


class GateContentionError(RuntimeError):
    """The record changed under us MAX_BEGIN_ROUNDS times in a row; the handler answers 409 or 503."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The final HTTP response, replayed exactly: header order and duplicates kept, body as raw bytes."""

    status_code: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Started:
    """A new key: run the saga for payment_id, then complete() (or abandon()) with token."""

    payment_id: int
    token: str


@dataclass(frozen=True, slots=True)
class Resumed:
    """A dead holder's key taken over: run the saga again for the stored payment_id, then complete() with token."""

    payment_id: int
    token: str


@dataclass(frozen=True, slots=True)
class InFlight:
    """Another request holds the key and is within its in-progress expiry (409)."""

    payment_id: int


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was used with a different payload (422). Nothing was written."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The key completed: answer with the stored response and `Idempotent-Replayed: true`."""

    payment_id: int
    response: StoredResponse


Decision = Started | Resumed | InFlight | Mismatch | Replay


def record_key(merchant_id: str, idempotency_key: str) -> str:
    """sha256(merchant_id NUL key): merchants can neither collide nor read each other's records."""
    return hashlib.sha256(f"{merchant_id}\x00{idempotency_key}".encode()).hexdigest()


def fingerprint(payload: Any) -> str:
    """sha256 of the canonical JSON of a parsed request body (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _is_conditional_failure(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class IdempotencyGate:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        in_progress_ttl_ms: int = DEFAULT_IN_PROGRESS_TTL_MS,
        record_ttl_s: int = RECORD_TTL_S,
        clock_ms: ClockMs = wall_clock_ms,
    ) -> None:
        assert 0 < in_progress_ttl_ms < record_ttl_s * 1000
        self._dynamodb = dynamodb
        self._table = table
        self._in_progress_ttl_ms = in_progress_ttl_ms
        self._record_ttl_s = record_ttl_s
        self._clock_ms = clock_ms

    # -- begin --------------------------------------------------------------------------------------------------

    def begin(
        self, merchant_id: str, idempotency_key: str, payload_fingerprint: str, new_payment_id: Callable[[], int]
    ) -> Decision:
        """Decide what this request does with its key; see the Decision classes.

        new_payment_id is called once, before the first write (a Snowflake costs microseconds; an unused one is
        simply never seen), so a new key costs one DynamoDB round trip.
        """
        pk = self._pk(merchant_id, idempotency_key)
        payment_id = new_payment_id()
        for _ in range(MAX_BEGIN_ROUNDS):
            now_ms = self._clock_ms()
            token = str(ULID())
            try:
                self._dynamodb.put_item(
                    TableName=self._table,
                    Item={
                        "pk": {"S": pk},
                        "merchant_id": {"S": merchant_id},
                        "status": {"S": IN_PROGRESS},
                        "fingerprint": {"S": payload_fingerprint},
                        "payment_id": {"N": str(payment_id)},
                        "token": {"S": token},
                        "in_progress_expires_ms": {"N": str(now_ms + self._in_progress_ttl_ms)},
                        "expires_at": {"N": str(now_ms // 1000 + self._record_ttl_s)},
                    },
                    # An expired IN_PROGRESS record is deliberately not overwritten here: that would lose its
                    # payment id. It is taken over by _resume() below instead.
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now_s",
                    ExpressionAttributeValues={":now_s": {"N": str(now_ms // 1000)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return Started(payment_id=payment_id, token=token)
            except ClientError as error:
                if not _is_conditional_failure(error):
                    raise
                old: dict[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
            if old is None:  # emulators without ReturnValuesOnConditionCheckFailure
                old = self._read(pk)
            if old is None:
                continue  # abandoned meanwhile: try the put again
            decision = self._decide(pk, old, payload_fingerprint, now_ms)
            if decision is not None:
                return decision
        raise GateContentionError(f"idempotency record {pk} kept changing during {MAX_BEGIN_ROUNDS} rounds")

    def _decide(self, pk: str, old: dict[str, Any], payload_fingerprint: str, now_ms: int) -> Decision | None:
        """The outcome for an existing record, or None when the round must be retried."""
        if int(old["expires_at"]["N"]) < now_ms // 1000:
            return None  # past its TTL but not yet deleted: absent, the next put overwrites it
        if old["fingerprint"]["S"] != payload_fingerprint:
            return Mismatch()
        payment_id = int(old["payment_id"]["N"])
        if old["status"]["S"] == COMPLETED:
            return Replay(payment_id=payment_id, response=_response_from_item(old))
        if int(old["in_progress_expires_ms"]["N"]) >= now_ms:
            return InFlight(payment_id=payment_id)
        return self._resume(pk, old["token"]["S"], payment_id, now_ms)

    def _resume(self, pk: str, dead_token: str, payment_id: int, now_ms: int) -> Resumed | None:
        """Take over a dead holder's record, conditional on its token: of two resumers only one wins."""
        token = str(ULID())
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": pk}},
                UpdateExpression=(
                    "SET #token = :token, in_progress_expires_ms = :in_progress, expires_at = :expires_at"
                ),
                ConditionExpression="#token = :dead AND #status = :in_progress_status",
                ExpressionAttributeNames={"#token": "token", "#status": "status"},
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":dead": {"S": dead_token},
                    ":in_progress_status": {"S": IN_PROGRESS},
                    ":in_progress": {"N": str(now_ms + self._in_progress_ttl_ms)},
                    ":expires_at": {"N": str(now_ms // 1000 + self._record_ttl_s)},
                },
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return None  # another resumer (or the late holder's complete) won: look again
            raise
        return Resumed(payment_id=payment_id, token=token)

    # -- complete / abandon -------------------------------------------------------------------------------------

    def complete(self, merchant_id: str, idempotency_key: str, token: str, response: StoredResponse) -> None:
        """Store the final response for replay; raise NotHolderError if another request took the key over."""
        now_ms = self._clock_ms()
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": self._pk(merchant_id, idempotency_key)}},
                UpdateExpression=(
                    "SET #status = :completed, response_status = :code, response_headers = :headers, "
                    "response_body = :body, expires_at = :expires_at, completed_ms = :now_ms "
                    "REMOVE in_progress_expires_ms"
                ),
                ConditionExpression="#token = :token AND #status = :in_progress_status",
                ExpressionAttributeNames={"#token": "token", "#status": "status"},
                ExpressionAttributeValues={
                    ":completed": {"S": COMPLETED},
                    ":code": {"N": str(response.status_code)},
                    ":headers": {"S": json.dumps([list(pair) for pair in response.headers])},
                    ":body": {"B": response.body},
                    ":expires_at": {"N": str(now_ms // 1000 + self._record_ttl_s)},
                    ":now_ms": {"N": str(now_ms)},
                    ":token": {"S": token},
                    ":in_progress_status": {"S": IN_PROGRESS},
                },
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                raise NotHolderError(
                    f"request with token {token} no longer holds idempotency key of merchant {merchant_id!r}"
                ) from None
            raise

    def abandon(self, merchant_id: str, idempotency_key: str, token: str) -> bool:
        """Free the key (nothing is stored) so the client's retry starts afresh; False if we no longer hold it.

        Only for outcomes with no side effect worth keeping the payment id for; otherwise use release().
        """
        try:
            self._dynamodb.delete_item(
                TableName=self._table,
                Key={"pk": {"S": self._pk(merchant_id, idempotency_key)}},
                ConditionExpression="#token = :token AND #status = :in_progress_status",
                ExpressionAttributeNames={"#token": "token", "#status": "status"},
                ExpressionAttributeValues={":token": {"S": token}, ":in_progress_status": {"S": IN_PROGRESS}},
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def release(self, merchant_id: str, idempotency_key: str, token: str) -> bool:
        """Give the key up but keep the record and its payment id: the next request resumes it at once.

        For failures after the payment id may have been used (a row written, a backend down) where the retry
        must reuse the same payment. The holder's token is replaced, so the releaser can no longer complete.
        False if we no longer hold the key.
        """
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": self._pk(merchant_id, idempotency_key)}},
                UpdateExpression="SET #token = :released, in_progress_expires_ms = :expired",
                ConditionExpression="#token = :token AND #status = :in_progress_status",
                ExpressionAttributeNames={"#token": "token", "#status": "status"},
                ExpressionAttributeValues={
                    ":released": {"S": f"released-{ULID()}"},
                    ":expired": {"N": "0"},
                    ":token": {"S": token},
                    ":in_progress_status": {"S": IN_PROGRESS},
                },
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    # -- helpers ------------------------------------------------------------------------------------------------

    @staticmethod
    def _pk(merchant_id: str, idempotency_key: str) -> str:
        if not merchant_id or "\x00" in merchant_id:
            raise ValueError("merchant_id must be non-empty and contain no NUL (the record key's separator)")
        if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
            raise InvalidIdempotencyKeyError(
                f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} characters, got {len(idempotency_key)}"
            )
        return record_key(merchant_id, idempotency_key)

    def _read(self, pk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=True
        ).get("Item")
        return item


def _response_from_item(item: dict[str, Any]) -> StoredResponse:
    headers = tuple((str(name), str(value)) for name, value in json.loads(item["response_headers"]["S"]))
    return StoredResponse(
        status_code=int(item["response_status"]["N"]), headers=headers, body=bytes(item["response_body"]["B"])
    )
