"""`paysaga payments ...`: the operations after checkout, for people. capture, cancel and refund go through the local
API exactly as a merchant's system would (the merchant's key, an Idempotency-Key); show reads the payment, its
operations, its ledger journal and its executions from the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table
from ulid import ULID

from local.stack.process import StackError
from local.stack.state import load, stack_dir

payments_app = typer.Typer(help="A payment after its checkout: capture, cancel, refund, show.", no_args_is_help=True)
console = Console()

MerchantKey = typer.Option(None, "--merchant-key", help="Default: the demo merchant's key.")
IdempotencyKey = typer.Option(None, "--idempotency-key", help="Default: a new ULID (send the same one to retry).")
Url = typer.Option(None, "--url", help="Default: the local stack's API.")


def send(path: str, body_for: Callable[[str], dict[str, Any]], *, merchant_key: str | None,
         idempotency_key: str | None, url: str | None, fails_from: int = 400) -> None:
    """POST `body_for(idempotency key)` to the local API (or `url`) as the merchant (the demo merchant by default),
    print the answer, exit 1 from status `fails_from` up."""
    from local.cli import ensure_demo_merchant  # noqa: PLC0415 (the CLI's root imports this module)

    state = load(stack_dir())
    base = url or (state.parts["api"].url if "api" in state.parts else None)
    if base is None:
        raise StackError("the local API is not running: `paysaga stack up` (or pass --url)")
    key = merchant_key or ensure_demo_merchant()
    idem = idempotency_key or str(ULID())
    try:
        response = httpx.post(f"{base}{path}", json=body_for(idem), timeout=330,
                              headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idem})
    except httpx.HTTPError as error:
        raise StackError(f"{base} does not answer: {error}") from None
    colour = "green" if response.status_code < 300 else "yellow" if response.status_code < 500 else "red"
    replayed = " (replayed)" if response.headers.get("Idempotent-Replayed") == "true" else ""
    console.print(f"[bold {colour}]HTTP {response.status_code}[/]{replayed}  Idempotency-Key: {idem}")
    console.print_json(response.text)
    if response.status_code >= fails_from:
        raise typer.Exit(1)


def _post(path: str, body: dict[str, Any], merchant_key: str | None, idempotency_key: str | None,
          url: str | None) -> None:
    send(path, lambda _: body, merchant_key=merchant_key, idempotency_key=idempotency_key, url=url)


@payments_app.command("capture")
def capture(payment_id: int = typer.Argument(...),
            amount: int | None = typer.Option(None, "--amount", help="Minor units; default: all authorized."),
            merchant_key: str | None = MerchantKey, idempotency_key: str | None = IdempotencyKey,
            url: str | None = Url) -> None:
    """Capture all or part of an authorized manual-capture payment (the rest is released)."""
    _post(f"/v1/payments/{payment_id}/capture", {} if amount is None else {"amount_minor": amount},
          merchant_key, idempotency_key, url)


@payments_app.command("cancel")
def cancel(payment_id: int = typer.Argument(...), reason: str | None = typer.Option(None, "--reason"),
           merchant_key: str | None = MerchantKey, idempotency_key: str | None = IdempotencyKey,
           url: str | None = Url) -> None:
    """Void an authorized manual-capture payment and release its reservation."""
    _post(f"/v1/payments/{payment_id}/cancel", {} if reason is None else {"reason": reason},
          merchant_key, idempotency_key, url)


@payments_app.command("refund")
def refund(payment_id: int = typer.Argument(...),  # noqa: PLR0917 (typer reads options from parameters)
           amount: int = typer.Option(..., "--amount", help="Minor units, at most what remains refundable."),
           reason: str | None = typer.Option(None, "--reason"), merchant_key: str | None = MerchantKey,
           idempotency_key: str | None = IdempotencyKey, url: str | None = Url) -> None:
    """Refund part or all of a captured payment (repeatable, within the captured amount)."""
    body: dict[str, Any] = {"amount_minor": amount}
    if reason is not None:
        body["reason"] = reason
    _post(f"/v1/payments/{payment_id}/refunds", body, merchant_key, idempotency_key, url)


@payments_app.command("show")
def show(payment_id: int = typer.Argument(...)) -> None:
    """The payment, its captures, cancels and refunds, its ledger journal and its executions."""
    from ledger import reports  # noqa: PLC0415
    from local.cli import _engine  # noqa: PLC0415
    from saga.api.payment_view import operation_body, payment_body  # noqa: PLC0415
    from store.executions import list_executions  # noqa: PLC0415
    from store.operations import operations_of_payment  # noqa: PLC0415
    from store.payments import get_payment  # noqa: PLC0415

    with _engine().connect() as conn:
        payment = get_payment(conn, payment_id=payment_id)
        if payment is None:
            raise StackError(f"no payment {payment_id}")
        operations = operations_of_payment(conn, payment_id=payment_id)
        journal = reports.journal(conn, payment_id=payment_id)
        executions = list_executions(conn, payment_id=payment_id, limit=100)
    shown = payment_body(payment)
    shown.pop("metadata", None)
    console.print_json(data=shown)
    ops = Table(title="operations")
    for column in ("id", "kind", "status", "amount", "initiator", "failure", "created"):
        ops.add_column(column, overflow="fold")
    for operation in operations:
        body = operation_body(operation)
        ops.add_row(body["id"], operation.kind, operation.status, str(operation.amount_minor or ""),
                    operation.initiator, operation.failure_code or "", body["created_at"])
    console.print(ops)
    entries = Table(title="ledger journal")
    columns = tuple(journal[0]) if journal else ("transaction",)
    for column in columns:
        entries.add_column(column, overflow="fold")
    for row in journal:
        entries.add_row(*(str(row[c]) for c in columns))
    console.print(entries)
    runs = Table(title="executions")
    for column in ("started", "status", "error", "execution"):
        runs.add_column(column, overflow="fold")
    for run in executions:
        runs.add_row(run.started_at.isoformat(timespec="seconds"), run.status, run.error or "",
                     run.execution_arn.rsplit(":", 1)[-1])
    console.print(runs)
