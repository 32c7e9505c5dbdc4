"""The sandbox's settlement feed: built from the sandbox's state (SQLite, a fixed clock) and read back by the parser;
and every way a feed is refused whole."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ledger.reconciliation.lines import LineType, SettlementFormatError, SettlementSource
from ledger.reconciliation.sandbox_feed import FEED_COLUMNS, parse_sandbox_feed
from ledger.reconciliation.terms import expected_fee_minor
from local.sandbox.state import CaptureMode, OperationRequest, SandboxStore
from steps.gateway.port import GatewayStatus, Operation

DAY = date(2026, 12, 3)
NOON_MS = int(datetime(2026, 12, 3, 12, tzinfo=UTC).timestamp() * 1000)
NAME = "sandbox-20261203.csv"
HEADER = ",".join(FEED_COLUMNS)


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON_MS)


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> SandboxStore:
    return SandboxStore(tmp_path / "sandbox.db", clock_ms=clock)


def authorize(store: SandboxStore, payment_id: str, amount: int, currency: str = "EUR",
              mode: str = CaptureMode.SYNC) -> str:
    answer = store.execute(OperationRequest(Operation.AUTHORIZE, payment_id, payment_id, amount, currency,
                                            card_token="tok_approve", capture_mode=mode))
    assert answer.http_status == 200, answer.body
    return str(answer.body["gateway_reference"])


def capture(store: SandboxStore, payment_id: str, amount: int, currency: str = "EUR") -> None:
    answer = store.execute(OperationRequest(Operation.CAPTURE, payment_id, f"{payment_id}:capture", amount, currency))
    assert answer.http_status == 200, answer.body


def refund(store: SandboxStore, payment_id: str, amount: int, refund_id: str | None, currency: str = "EUR",
           *, declined: bool = False) -> str:
    answer = store.execute(OperationRequest(Operation.REFUND, payment_id, f"{payment_id}:refund:{refund_id}", amount,
                                            currency, refund_id=refund_id, refunds_declined=declined))
    assert answer.http_status == 200, answer.body
    return str(answer.body["operation_reference"])


def feed(store: SandboxStore, day: date = DAY) -> SettlementSource:
    return parse_sandbox_feed(store.settlement_feed(day), NAME)


def test_a_day_s_captures_refunds_and_payouts_round_trip_through_the_parser(store: SandboxStore, clock: Clock) -> None:
    ref_1 = authorize(store, "pay_1", 10_000)
    capture(store, "pay_1", 10_000)
    ref_2 = authorize(store, "pay_2", 5_000)
    clock.now_ms += 1
    capture(store, "pay_2", 4_000)  # partial: the captured amount settles
    ref_3 = authorize(store, "pay_3", 1_000, "JPY")
    clock.now_ms += 1_000
    capture(store, "pay_3", 1_000, "JPY")
    clock.now_ms += 1_000
    op_1 = refund(store, "pay_1", 2_500, "7301")
    clock.now_ms += 1
    op_2 = refund(store, "pay_2", 4_000, None)  # the saga's own whole-payment refund names no refund id
    source = feed(store)

    assert source.gateway == "sandbox"
    got = [(line.type, line.currency, line.gross_minor, line.fee_minor, line.net_minor, line.payment_reference,
            line.gateway_reference, line.operation_reference, line.modification_reference) for line in source.lines]
    fee_1, fee_2 = (expected_fee_minor("sandbox", LineType.CAPTURE, gross, "EUR") for gross in (10_000, 4_000))
    fee_3 = expected_fee_minor("sandbox", LineType.CAPTURE, 1_000, "JPY")
    assert (fee_1, fee_2, fee_3) == (140, 68, 12)  # 1.2 % + 0.20 (nothing fixed below a yen)
    eur_paid = 10_000 - fee_1 + 4_000 - fee_2 - 2_500 - 4_000
    assert got == [
        (LineType.CAPTURE, "EUR", 10_000, fee_1, 10_000 - fee_1, "pay_1", ref_1, None, None),
        (LineType.CAPTURE, "EUR", 4_000, fee_2, 4_000 - fee_2, "pay_2", ref_2, None, None),
        (LineType.CAPTURE, "JPY", 1_000, fee_3, 1_000 - fee_3, "pay_3", ref_3, None, None),
        (LineType.REFUND, "EUR", -2_500, 0, -2_500, "pay_1", ref_1, "7301", op_1),
        (LineType.REFUND, "EUR", -4_000, 0, -4_000, "pay_2", ref_2, None, op_2),
        (LineType.PAYOUT, "EUR", -eur_paid, 0, -eur_paid, None, None, None, None),
        (LineType.PAYOUT, "JPY", -(1_000 - fee_3), 0, -(1_000 - fee_3), None, None, None, None),
    ]
    assert [line.batch_reference for line in source.lines] == ["sandbox-20261203-EUR"] * 2 + [
        "sandbox-20261203-JPY"] + ["sandbox-20261203-EUR"] * 3 + ["sandbox-20261203-JPY"]
    assert [line.line_key for line in source.lines] == [
        f"sbx:20261203:capture:{ref_1}", f"sbx:20261203:capture:{ref_2}", f"sbx:20261203:capture:{ref_3}",
        f"sbx:20261203:refund:{op_1}", f"sbx:20261203:refund:{op_2}", "sbx:20261203:payout:EUR",
        "sbx:20261203:payout:JPY",
    ]
    assert [line.booked_at for line in source.lines[:5]] == [
        datetime(2026, 12, 3, 12, tzinfo=UTC), datetime(2026, 12, 3, 12, 0, 0, 1_000, tzinfo=UTC),
        datetime(2026, 12, 3, 12, 0, 1, 1_000, tzinfo=UTC), datetime(2026, 12, 3, 12, 0, 2, 1_000, tzinfo=UTC),
        datetime(2026, 12, 3, 12, 0, 2, 2_000, tzinfo=UTC),
    ]
    assert source.lines[-1].booked_at == datetime(2026, 12, 3, 23, 59, 59, 999_000, tzinfo=UTC)
    # Every batch nets to zero: the payout takes out exactly what the day's lines put in.
    for batch in {line.batch_reference for line in source.lines}:
        assert sum(line.net_minor for line in source.lines if line.batch_reference == batch) == 0
    data = store.settlement_feed(DAY)
    assert data.decode().endswith("\n# end lines=7\n")
    assert source.content_sha256 == hashlib.sha256(data).hexdigest()
    assert feed(store) == source  # the same day read again: the same bytes, the same keys


def test_only_final_movements_of_that_utc_day_are_booked(store: SandboxStore, clock: Clock) -> None:
    clock.now_ms = NOON_MS - 12 * 3_600_000 - 1  # 2026-12-02T23:59:59.999Z
    authorize(store, "pay_yesterday", 1_000)
    capture(store, "pay_yesterday", 1_000)
    clock.now_ms = NOON_MS
    authorize(store, "pay_declined_refund", 1_000)
    capture(store, "pay_declined_refund", 1_000)
    refund(store, "pay_declined_refund", 1_000, "1", declined=True)  # gave nothing back: not settled
    authorize(store, "pay_failed", 1_000, mode=CaptureMode.FAILS)
    capture(store, "pay_failed", 1_000)
    authorize(store, "pay_voided", 1_000)
    store.execute(OperationRequest(Operation.VOID, "pay_voided", "pay_voided:void", None, None))
    authorize(store, "pay_uncaptured", 1_000)
    lines = feed(store).lines
    assert [(line.type, line.payment_reference) for line in lines] == [
        (LineType.CAPTURE, "pay_declined_refund"), (LineType.PAYOUT, None)
    ]
    yesterday = feed(store, date(2026, 12, 2)).lines
    assert [(line.type, line.payment_reference) for line in yesterday] == [
        (LineType.CAPTURE, "pay_yesterday"), (LineType.PAYOUT, None)
    ]
    assert yesterday[0].booked_at == datetime(2026, 12, 2, 23, 59, 59, 999_000, tzinfo=UTC)


def test_a_submitted_capture_is_booked_when_it_settles(store: SandboxStore, clock: Clock) -> None:
    authorize(store, "pay_async", 3_000, mode=CaptureMode.ASYNC_CAPTURED)
    capture(store, "pay_async", 3_000)
    assert feed(store).lines == ()  # submitted, not final
    store.settle_after_ms = 1_500
    clock.now_ms += 60_000
    # Nobody looked the payment up: the feed settles what is due, booked when its delay ran out.
    (line, _) = feed(store).lines
    assert line.booked_at == datetime(2026, 12, 3, 12, 0, 1, 500_000, tzinfo=UTC)
    assert store.snapshot("pay_async").body["status"] == GatewayStatus.CAPTURED.value
    authorize(store, "pay_manual", 2_000, mode=CaptureMode.ASYNC_CAPTURED)
    store.settle_after_ms = None
    capture(store, "pay_manual", 2_000)
    clock.now_ms += 5_000
    store.settle("pay_manual", None)
    lines = feed(store).lines
    assert [(line.payment_reference, line.booked_at) for line in lines[:2]] == [
        ("pay_async", datetime(2026, 12, 3, 12, 0, 1, 500_000, tzinfo=UTC)),
        ("pay_manual", datetime(2026, 12, 3, 12, 1, 5, tzinfo=UTC)),
    ]


def test_a_day_whose_refunds_outweigh_its_captures_pays_nothing_out(store: SandboxStore, clock: Clock) -> None:
    clock.now_ms -= 86_400_000
    authorize(store, "pay_1", 10_000)
    capture(store, "pay_1", 10_000)
    clock.now_ms += 86_400_000
    refund(store, "pay_1", 10_000, "5")
    lines = feed(store).lines
    assert [(line.type, line.gross_minor) for line in lines] == [(LineType.REFUND, -10_000)]


def test_a_quiet_day_is_a_header_and_a_trailer_and_reset_forgets_the_bookings(store: SandboxStore) -> None:
    assert store.settlement_feed(DAY) == f"{HEADER}\n# end lines=0\n".encode()
    authorize(store, "pay_1", 10_000)
    capture(store, "pay_1", 10_000)
    assert len(feed(store).lines) == 2
    store.reset()
    assert feed(store).lines == ()


# --- the parser's refusals ------------------------------------------------------------------------------------

CAPTURE = "sbx:20261203:capture:g1,sandbox-20261203-EUR,capture,pay_1,g1,,,EUR,10000,140,9860,2026-12-03T10:00:00.123Z"
PAYOUT = "sbx:20261203:payout:EUR,sandbox-20261203-EUR,payout,,,,,EUR,-9860,0,-9860,2026-12-03T23:59:59.999Z"


def feed_of(*lines: str, trailer: str | None = None, header: str = HEADER) -> bytes:
    end = trailer if trailer is not None else f"# end lines={len(lines)}"
    return "".join(f"{line}\n" for line in (header, *lines, end)).encode()


def refused(data: bytes) -> SettlementFormatError:
    with pytest.raises(SettlementFormatError) as caught:
        parse_sandbox_feed(data, NAME)
    assert caught.value.source == NAME
    return caught.value


def test_a_good_hand_written_feed_parses() -> None:
    source = parse_sandbox_feed(feed_of(CAPTURE, PAYOUT), NAME)
    assert [(line.line_number, line.line_key, line.net_minor) for line in source.lines] == [
        (2, "sbx:20261203:capture:g1", 9860), (3, "sbx:20261203:payout:EUR", -9860),
    ]
    assert source.lines[0].booked_at == datetime(2026, 12, 3, 10, 0, 0, 123_000, tzinfo=UTC)


@pytest.mark.parametrize("column", FEED_COLUMNS)
def test_a_missing_column_is_named_on_line_1(column: str) -> None:
    index = FEED_COLUMNS.index(column)

    def drop(line: str) -> str:
        return ",".join(value for position, value in enumerate(line.split(",")) if position != index)

    error = refused(feed_of(drop(CAPTURE), header=drop(HEADER)))
    assert (error.line, error.column) == (1, column)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("gross_minor", "100.00", "not an integer amount"),
        ("gross_minor", " 10000", "not an integer amount"),
        ("fee_minor", "", "not an integer amount"),
        ("net_minor", "9861", "net 9861 != gross 10000 - fee 140"),
        ("currency", "XXX", "unknown currency 'XXX'"),
        ("type", "settled", "unknown type 'settled'"),
        ("booked_at", "2026-12-03 10:00:00", "not a UTC timestamp"),
        ("booked_at", "2026-12-03T10:00:00+01:00", "not a UTC timestamp"),
        ("booked_at", "2026-02-30T10:00:00.000Z", "not a date"),
        ("line_id", "", "empty"),
        ("batch", "", "empty"),
    ],
)
def test_a_bad_field_refuses_the_whole_feed(field: str, value: str, message: str) -> None:
    values = CAPTURE.split(",")
    values[FEED_COLUMNS.index(field)] = value
    error = refused(feed_of(",".join(values), PAYOUT))
    assert (error.line, error.column) == (2, field)
    assert message in str(error)


def test_a_movement_with_the_wrong_sign_or_a_payout_paying_in_is_refused() -> None:
    backwards = CAPTURE.replace("10000,140,9860", "-10000,0,-10000")
    assert refused(feed_of(backwards)).column == "gross_minor"
    paying_in = PAYOUT.replace("-9860,0,-9860", "9860,0,9860")
    error = refused(feed_of(CAPTURE, paying_in))
    assert (error.line, error.column) == (3, "gross_minor")


def test_a_feed_without_its_trailer_or_with_a_wrong_count_is_truncated() -> None:
    whole = feed_of(CAPTURE, PAYOUT)
    cut = whole[: whole.index(b"# end")]  # ends cleanly after the payout line, but no trailer
    error = refused(cut)
    assert (error.line, error.column) == (3, None) and "truncated" in str(error)
    error = refused(whole[:-1])  # the trailer lost its newline
    assert "truncated" in str(error)
    error = refused(feed_of(CAPTURE, PAYOUT, trailer="# end lines=3"))
    assert error.line == 4 and "the trailer says 3 lines, the feed has 2" in str(error)
    assert "truncated" in str(refused(feed_of(CAPTURE, PAYOUT, trailer="# end")))
    assert refused(b"").line == 1


def test_garbled_lines_duplicates_and_bad_bytes_are_refused() -> None:
    error = refused(feed_of(CAPTURE.rsplit(",", 2)[0], PAYOUT))
    assert (error.line, error.column) == (2, None) and "fields where the header has" in str(error)
    error = refused(feed_of(CAPTURE, CAPTURE, PAYOUT))
    assert (error.line, error.column) == (3, "line_id")
    error = refused(feed_of(CAPTURE, PAYOUT).replace(b"pay_1", b"pay_\xff"))
    assert (error.line, "not UTF-8" in str(error)) == (2, True)
