"""Adyen's Settlement details report parser: every Type it maps, currencies of 0 and 3 decimals, stable line keys,
time zones, and a whole-file refusal naming the line and the column for each way a report can be wrong."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime

import pytest

from ledger.reconciliation.adyen_report import REQUIRED_COLUMNS, parse_adyen_settlement_report
from ledger.reconciliation.lines import LineType, SettlementFormatError, SettlementLine

NAME = "settlement_detail_report_batch_42.csv"
HEADER = (
    "Company Account", "Merchant Account", "Psp Reference", "Merchant Reference", "Payment Method", "Creation Date",
    "TimeZone", "Type", "Modification Reference", "Gross Currency", "Gross Debit (GC)", "Gross Credit (GC)",
    "Exchange Rate", "Net Currency", "Net Debit (NC)", "Net Credit (NC)", "Commission (NC)", "Markup (NC)",
    "Scheme Fees (NC)", "Interchange (NC)", "Payment Method Variant", "Modification Merchant Reference",
    "Batch Number",
)
Row = dict[str, str]


def row(kind: str, currency: str = "EUR", **columns: str) -> Row:
    """One report line; `columns` by header name with spaces and brackets spelled as keyword-safe names, e.g.
    gross_credit="100.00" for "Gross Credit (GC)"."""
    names = {
        "psp": "Psp Reference", "merchant_ref": "Merchant Reference", "date": "Creation Date", "tz": "TimeZone",
        "mod": "Modification Reference", "gross_debit": "Gross Debit (GC)", "gross_credit": "Gross Credit (GC)",
        "net_debit": "Net Debit (NC)", "net_credit": "Net Credit (NC)", "commission": "Commission (NC)",
        "markup": "Markup (NC)", "scheme": "Scheme Fees (NC)", "interchange": "Interchange (NC)",
        "mod_merchant_ref": "Modification Merchant Reference", "batch": "Batch Number", "account": "Merchant Account",
        "gross_currency": "Gross Currency",
    }
    values: Row = dict.fromkeys(HEADER, "")
    values.update({
        "Company Account": "PaysagaCompany", "Merchant Account": "PaysagaEU", "Payment Method": "visa",
        "Creation Date": "2026-12-03 10:00:00", "TimeZone": "UTC", "Type": kind, "Gross Currency": currency,
        "Exchange Rate": "1", "Net Currency": currency, "Batch Number": "42", "Payment Method Variant": "visa",
    })
    for key, value in columns.items():
        values[names[key]] = value
    return values


def settled(psp: str, payment: str, gross: str, net: str, commission: str, **more: str) -> Row:
    return row("Settled", psp=psp, merchant_ref=payment, mod=psp, gross_credit=gross, net_credit=net,
               commission=commission, **more)


def payout(net_debit: str, currency: str = "EUR", **more: str) -> Row:
    return row("MerchantPayout", currency, net_debit=net_debit, **more)


def report(*rows: Row, header: tuple[str, ...] = HEADER, bom: bool = False, newline: str = "\n") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(header)
    for values in rows:
        writer.writerow([values.get(column, "") for column in header])
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


def parse(data: bytes) -> tuple[SettlementLine, ...]:
    return parse_adyen_settlement_report(data, NAME).lines


def refused(data: bytes) -> SettlementFormatError:
    with pytest.raises(SettlementFormatError) as caught:
        parse_adyen_settlement_report(data, NAME)
    assert caught.value.source == NAME
    assert str(caught.value).startswith(f"{NAME}: line {caught.value.line}")
    return caught.value


def test_every_type_maps_to_its_line_with_signs_from_the_balance_s_point_of_view() -> None:
    lines = parse(report(
        settled("PSP1", "pay_1", "100.00", "98.29", "1.71"),
        row("Refunded", psp="PSP1", merchant_ref="pay_1", mod="MOD2", mod_merchant_ref="ref_7", gross_debit="25.00",
            net_debit="25.11", commission="0.11"),
        row("Chargeback", psp="PSP3", merchant_ref="pay_3", mod="MOD3", gross_debit="50.00", net_debit="75.00",
            commission="25.00"),
        row("SecondChargeback", psp="PSP3", merchant_ref="pay_3", mod="MOD4", gross_debit="50.00",
            net_debit="50.00"),
        row("ChargebackReversed", psp="PSP3", merchant_ref="pay_3", mod="MOD5", gross_credit="50.00",
            net_credit="50.00"),
        row("Fee", net_debit="1.50"),
        row("MiscCosts", net_debit="0.40"),
        row("PaymentCost", psp="PSP1", net_debit="0.10"),
        row("InvoiceDeduction", net_credit="2.00"),
        payout("48.18", mod="PAYOUT42"),
    ))
    got = [(line.type, line.gross_minor, line.fee_minor, line.net_minor) for line in lines]
    assert got == [
        (LineType.CAPTURE, 10000, 171, 9829),
        (LineType.REFUND, -2500, 11, -2511),
        (LineType.CHARGEBACK, -5000, 2500, -7500),
        (LineType.CHARGEBACK, -5000, 0, -5000),
        (LineType.CHARGEBACK_REVERSAL, 5000, 0, 5000),
        (LineType.FEE, 0, 150, -150),
        (LineType.FEE, 0, 40, -40),
        (LineType.FEE, 0, 10, -10),
        (LineType.FEE, 0, -200, 200),
        (LineType.PAYOUT, -4818, 0, -4818),
    ]
    assert [line.line_number for line in lines] == list(range(2, 12))
    assert {line.currency for line in lines} == {"EUR"}
    assert {line.batch_reference for line in lines} == {"PaysagaEU:42"}
    capture, refund = lines[0], lines[1]
    assert (capture.payment_reference, capture.gateway_reference, capture.modification_reference,
            capture.operation_reference) == ("pay_1", "PSP1", "PSP1", None)
    # Adyen reports the payment's merchant reference on a refund line; our refund id is the modification's.
    assert (refund.payment_reference, refund.gateway_reference, refund.modification_reference,
            refund.operation_reference) == ("pay_1", "PSP1", "MOD2", "ref_7")
    assert capture.raw["Psp Reference"] == "PSP1" and capture.raw["Payment Method"] == "visa"
    assert lines[5].payment_reference is None and lines[5].gateway_reference is None


def test_fee_columns_add_up_across_commission_markup_scheme_fees_and_interchange() -> None:
    (line, _) = parse(report(
        settled("PSP1", "pay_1", "100.00", "98.00", "0.50", markup="0.25", scheme="0.75", interchange="0.50"),
        payout("98.00"),
    ))
    assert (line.gross_minor, line.fee_minor, line.net_minor) == (10000, 200, 9800)


def test_zero_and_three_decimal_currencies_are_read_in_their_own_minor_units() -> None:
    jpy = parse(report(row("Settled", "JPY", psp="PSPJ", merchant_ref="pay_j", gross_credit="1000", net_credit="984",
                           commission="16", batch="7"),
                       payout("984", "JPY", batch="7")))
    assert (jpy[0].currency, jpy[0].gross_minor, jpy[0].fee_minor, jpy[0].net_minor) == ("JPY", 1000, 16, 984)
    assert jpy[1].gross_minor == -984
    kwd = parse(report(row("Settled", "KWD", psp="PSPK", merchant_ref="pay_k", gross_credit="1.250",
                           net_credit="1.2", commission="0.050"),
                       payout("1.200", "KWD")))
    assert (kwd[0].currency, kwd[0].gross_minor, kwd[0].fee_minor, kwd[0].net_minor) == ("KWD", 1250, 50, 1200)


def test_the_same_bytes_give_the_same_source_and_line_keys_name_the_modification_or_else_the_line() -> None:
    data = report(settled("PSP1", "pay_1", "10.00", "9.83", "0.17"), row("Fee", net_debit="1.00"), payout("8.83"))
    first, second = (parse_adyen_settlement_report(data, NAME) for _ in range(2))
    assert first == second
    assert first.gateway == "adyen" and first.name == NAME
    assert first.content_sha256 == hashlib.sha256(data).hexdigest()
    assert [line.line_key for line in first.lines] == [
        "adyen:PaysagaEU:42:Settled:PSP1",
        "adyen:PaysagaEU:42:Fee:line3",
        "adyen:PaysagaEU:42:MerchantPayout:line4",
    ]
    other = parse_adyen_settlement_report(report(
        settled("PSP1", "pay_1", "10.00", "9.83", "0.17", batch="43"), payout("9.83", batch="43"),
    ), NAME)
    assert other.content_sha256 != first.content_sha256
    assert [line.line_key for line in other.lines] == [
        "adyen:PaysagaEU:43:Settled:PSP1", "adyen:PaysagaEU:43:MerchantPayout:line3"
    ]


def test_booked_at_is_the_creation_date_in_its_time_zone() -> None:
    lines = parse(report(
        settled("PSP1", "pay_1", "10.00", "10.00", "", tz="CET"),
        settled("PSP2", "pay_2", "10.00", "10.00", "", tz="CEST"),
        settled("PSP3", "pay_3", "10.00", "10.00", "", tz="PST", date="2026-12-02 20:30:00"),
        settled("PSP4", "pay_4", "10.00", "10.00", "", tz="GMT"),
        payout("40.00"),
    ))
    utc = [line.booked_at.astimezone(UTC) for line in lines[:4]]
    assert utc == [
        datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 8, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 4, 30, tzinfo=UTC),
        datetime(2026, 12, 3, 10, 0, tzinfo=UTC),
    ]
    assert all(line.booked_at.tzinfo is not None for line in lines)


def test_a_bom_crlf_lines_and_extra_or_reordered_columns_are_read_alike() -> None:
    rows = (settled("PSP1", "pay_1", "10.00", "9.83", "0.17"), payout("9.83"))
    plain = parse(report(*rows))
    header = ("Extra Column", *reversed(HEADER))
    other = parse(report(*rows, header=header, bom=True, newline="\r\n"))
    assert [(line.line_key, line.gross_minor, line.fee_minor, line.booked_at) for line in other] == [
        (line.line_key, line.gross_minor, line.fee_minor, line.booked_at) for line in plain
    ]
    assert other[0].raw["Extra Column"] == ""


def test_only_the_columns_paysaga_reads_are_required() -> None:
    optional = ("Company Account", "Payment Method", "Exchange Rate", "Payment Method Variant")
    header = tuple(column for column in HEADER if column not in optional)
    lines = parse(report(settled("PSP1", "pay_1", "10.00", "9.83", "0.17"), payout("9.83"), header=header))
    assert len(lines) == 2


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_a_missing_required_column_is_named_on_line_1(column: str) -> None:
    header = tuple(name for name in HEADER if name != column)
    error = refused(report(settled("PSP1", "pay_1", "10.00", "9.83", "0.17"), payout("9.83"), header=header))
    assert (error.line, error.column) == (1, column)
    assert "required column missing" in str(error)


def test_a_line_with_another_number_of_fields_than_the_header_is_refused() -> None:
    data = report(settled("PSP1", "pay_1", "10.00", "9.83", "0.17"), payout("9.83"))
    lines = data.decode().split("\n")
    lines[1] = lines[1].rsplit(",", 3)[0]  # a line cut short mid-way
    error = refused("\n".join(lines).encode())
    assert (error.line, error.column) == (2, None)
    assert "fields where the header has" in str(error)


@pytest.mark.parametrize(
    ("bad_row", "column", "message"),
    [
        (settled("PSP1", "pay_1", "10,00", "9.83", "0.17"), "Gross Credit (GC)", "not an amount"),
        (settled("PSP1", "pay_1", "10.001", "9.83", "0.17"), "Gross Credit (GC)", "has 3 decimals"),
        (settled("PSP1", "pay_1", "1e3", "9.83", "0.17"), "Gross Credit (GC)", "not an amount"),
        (settled("PSP1", "pay_1", "", "9.83", "0.17"), "Gross Credit (GC)", "empty"),
        (settled("PSP1", "pay_1", "10.00", "9.83", "0.18"), "Commission (NC)", "gross - net is 17"),
        (settled("PSP1", "pay_1", "-10.00", "-9.83", "-0.17"), "Gross Credit (GC)", "negative amount"),
        (settled("PSP1", "pay_1", "10.00", "9.83", "0.17") | {"Gross Currency": "XXX", "Net Currency": "XXX"},
         "Net Currency", "unknown currency 'XXX'"),
        (settled("PSP1", "pay_1", "10.00", "9.83", "0.17", gross_currency="USD"), "Gross Currency",
         "FX settlement is not supported"),
        (settled("PSP1", "pay_1", "10.00", "9.83", "0.17", date="2026-13-03 10:00:00"), "Creation Date",
         "not a date"),
        (settled("PSP1", "pay_1", "10.00", "9.83", "0.17", date="03/12/2026 10:00"), "Creation Date",
         "not a 'YYYY-MM-DD HH:MM:SS' date"),
        (settled("PSP1", "pay_1", "10.00", "9.83", "0.17", tz="IST"), "TimeZone", "unknown time zone 'IST'"),
        (row("RefundedReversed", psp="PSP1", gross_credit="1.00", net_credit="1.00"), "Type",
         "'RefundedReversed' is not supported by paysaga's reconciliation"),
        (row("Balancetransfer", net_credit="1.00"), "Type", "'Balancetransfer' is not supported"),
        (row("Refunded", psp="PSP1", mod="M", gross_debit="1.00", net_debit="0.50"), "Commission (NC)",
         "fees add up to 0 minor units, but gross - net is -50"),
        (row("Fee"), "Net Debit (NC)", "neither a net debit nor a net credit"),
        (settled("PSP1", "pay_1", "10.00", "9.83", "0.17", batch=""), "Batch Number", "empty"),
    ],
)
def test_a_bad_line_refuses_the_whole_report_naming_line_and_column(bad_row: Row, column: str, message: str) -> None:
    error = refused(report(settled("PSP0", "pay_0", "1.00", "1.00", ""), bad_row, payout("10.00")))
    assert (error.line, error.column) == (3, column)
    assert message in str(error)


def test_an_empty_file_is_refused() -> None:
    for data in (b"", b"\xef\xbb\xbf", b"\n"):
        error = refused(data)
        assert (error.line, error.column) == (1, None)
        assert "empty file" in str(error)


def test_a_file_cut_short_mid_line_is_refused_on_its_last_line() -> None:
    data = report(settled("PSP1", "pay_1", "10.00", "9.83", "0.17"), payout("9.83"))
    error = refused(data[:-1])  # everything but the final newline: Adyen ends every line with one
    assert (error.line, error.column) == (3, None)
    assert "truncated" in str(error)


def test_a_batch_without_its_merchant_payout_line_is_incomplete() -> None:
    error = refused(report(settled("PSP1", "pay_1", "10.00", "9.83", "0.17"), row("Fee", net_debit="1.00")))
    assert (error.line, error.column) == (2, "Type")
    assert "no MerchantPayout line: the report is incomplete" in str(error)
    header_only = refused(report())
    assert "no MerchantPayout line" in str(header_only)


def test_each_batch_of_a_report_needs_its_payout() -> None:
    error = refused(report(
        settled("PSP1", "pay_1", "10.00", "9.83", "0.17"), payout("9.83"),
        settled("PSP2", "pay_2", "10.00", "9.83", "0.17", batch="43"),
    ))
    assert error.line == 4 and "PaysagaEU:43" in str(error)


def test_bytes_that_are_not_utf8_are_refused_naming_their_line() -> None:
    data = report(settled("PSP1", "pay_1", "10.00", "9.83", "0.17"), settled("PSP2", "pay_2", "10.00", "9.83", "0.17"),
                  payout("19.66"))
    for bom in (b"", b"\xef\xbb\xbf"):
        error = refused(bom + data.replace(b"pay_2", b"pay_\xff"))
        assert (error.line, error.column) == (3, None)
        assert "not UTF-8" in str(error)


def test_two_lines_with_one_key_are_refused() -> None:
    error = refused(report(
        settled("PSP1", "pay_1", "10.00", "9.83", "0.17"),
        settled("PSP1", "pay_1", "10.00", "9.83", "0.17"),
        payout("19.66"),
    ))
    assert (error.line, error.column) == (3, "Modification Reference")


def test_a_payout_paying_in_is_refused() -> None:
    error = refused(report(settled("PSP1", "pay_1", "10.00", "9.83", "0.17"), payout("-9.83")))
    assert (error.line, error.column) == (3, "Net Debit (NC)")
