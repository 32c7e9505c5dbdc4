"""The small, frozen results the record stores return: whether an operation applied and, if not, why (the ledger's
results use the same reasons)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"  # the same operation ran before for this (payment_id, kind): nothing new
    ALREADY_RESOLVED = "already_resolved"  # the reservation was resolved the other way (post vs void)
    ALREADY_EXISTS = "already_exists"  # a record with this key is there already
    NO_RESERVATION = "no_reservation"
    NOTHING_POSTED = "nothing_posted"
    EXCEEDS_RESERVATION = "exceeds_reservation"
    FEE_EXCEEDS_AMOUNT = "fee_exceeds_amount"
    INSUFFICIENT_FUNDS = "insufficient_funds"  # a no-negative account would go below zero
    PAYMENT_NOT_FOUND = "payment_not_found"
    NOT_FOUND = "not_found"
    STALE_VERSION = "stale_version"
    LEASE_LOST = "lease_lost"  # a newer execution holds the payment: the stale one's write matched no row


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """Outcome of transition_payment: on success the new version; on STALE_VERSION the current one, nothing written."""

    applied: bool
    reason: Reason
    payment_id: int
    expected_version: int
    version: int | None
    status: str | None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of an idempotent insert or update of a record (payment, outbox event, saga execution, merchant)."""

    applied: bool
    reason: Reason
