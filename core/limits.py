"""Every time limit of the system, written once, with its unit in its name, and the relations between them asserted
at import (TigerBeetle's TIGER_STYLE: a limit is only as good as the relation that says why it has its value).

The runtime (core/settings.py defaults, core/db.py, steps/fence.py) and the CDK app (infra/) read their values from
here. Two files cannot import it and so repeat values that tests check against this module:
- ``statemachine.asl.json`` (each Task's ``TimeoutSeconds``, the machine's ``TimeoutSeconds``):
  tests/unit/core/test_limits.py reads the file, checks it holds these values and relations, and computes the whole
  saga's worst case from it;
- the synthesized CDK template (each function's Timeout and environment): tests/unit/infra/test_limits.py.

The limits of one payment, outermost first (values as of this writing; the asserts below are the contract):

    API Gateway integration   29 s  the longest a client waits for its answer
    start answer budget       27 s  < API Gateway: past it the start answers 202 (poll GET) and the saga runs on
    Idempotency-Key held     360 s  > the start function
    start function           330 s  > lease wait (25 s) + state machine (290 s)
    execution lease          330 s  >= the start function; lease wait + lease <= the key's hold
    state machine            290 s  <= Express's 300 s; caps whatever the Tasks' retries add up to
    each Task                 30 s  <= its Lambda's timeout (30 s)
    fence                     35 s  > the AuthorizeGateway invocation (30 s) >= 2 gateway calls (10 s) + 1 write (10 s)

Only the standard library may be imported here: infra imports this module (import-linter allows exactly that).
"""

from __future__ import annotations

from typing import Final

# ---- AWS service ceilings (not ours to choose) -----------------------------------------------------------------

LAMBDA_MAX_TIMEOUT_S: Final[int] = 900
EXPRESS_MAX_DURATION_S: Final[int] = 300  # an Express execution, StartSyncExecution included, ends within 5 minutes
API_GATEWAY_MAX_INTEGRATION_TIMEOUT_MS: Final[int] = 29_000  # REST API default quota

# ---- Backends ------------------------------------------------------------------------------------------------

# One gateway call (authorize, lookup, capture, void, refund): GATEWAY_TIMEOUT_MS, the variable's default.
GATEWAY_TIMEOUT_MS: Final[int] = 10_000

# PostgreSQL (core/db.py): no statement of ours may hold locks for longer than the statement timeout.
DB_CONNECT_TIMEOUT_S: Final[int] = 5
DB_POOL_TIMEOUT_S: Final[int] = 10  # waiting for a pooled connection
DB_STATEMENT_TIMEOUT_MS: Final[int] = 10_000
# On AWS the functions' login role carries these (admin.migrate sets them with ALTER ROLE; RDS Proxy refuses startup
# options): a transaction left open by a function that died or froze gives its locks back within a step's lifetime.
DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: Final[int] = 30_000
# How long a process keeps the database credentials it read from Secrets Manager before reading them again (core.db;
# a connection refused for its password rereads at once, so a rotation costs at most one failed attempt).
SECRET_MAX_AGE_S: Final[int] = 300

# ---- Lambda functions and the state machine ------------------------------------------------------------------

# A step does one bounded thing (at most a gateway call, the lookup that resolves an unknown outcome, one write).
STEP_LAMBDA_TIMEOUT_S: Final[int] = 30
# Each Task's TimeoutSeconds in statemachine.asl.json (the file is the source of truth on AWS; tests compare).
TASK_TIMEOUT_S: Final[int] = 30
# The state machine's TimeoutSeconds in statemachine.asl.json: it caps the saga, whatever its retries add up to.
STATE_MACHINE_TIMEOUT_S: Final[int] = 290
# The start function behind the API: waits for the lease, runs StartSyncExecution, records the outcome.
START_FUNCTION_TIMEOUT_S: Final[int] = 330
# How long botocore waits for StartSyncExecution's answer (saga/sfn.py): longer than an execution can run.
SFN_SYNC_READ_TIMEOUT_S: Final[int] = START_FUNCTION_TIMEOUT_S

# ---- The start path ------------------------------------------------------------------------------------------

# API Gateway's integration timeout (infra/api.py): the longest a client waits for its answer.
API_INTEGRATION_TIMEOUT_MS: Final[int] = 29_000
# The largest request body the API takes, in bytes (a size, not a time: it is here so infra can read it too). The
# start path answers 413 beyond it (saga/api/request.py); on AWS the WAF answers the same 413 in front of the API
# (infra/api.py), within the body size WAF inspects for API Gateway (16 KiB, asserted there).
MAX_BODY_BYTES: Final[int] = 16_384
# A start that meets a running execution of its payment waits this long for it, then answers 409 (LEASE_WAIT_MS).
LEASE_WAIT_MS: Final[int] = 25_000
# The start path answers within this (START_ANSWER_BUDGET_MS): a saga still running then gets 202 with the payment as
# it stands and a Location to poll (GET /v1/payments/{id}); the saga runs on and stores the final answer for the key.
# The margin covers what comes after the wait (reading the payment, the Lambda's and API Gateway's own overhead).
START_ANSWER_MARGIN_MS: Final[int] = 2_000
START_ANSWER_BUDGET_MS: Final[int] = API_INTEGRATION_TIMEOUT_MS - START_ANSWER_MARGIN_MS
# One execution per payment at a time (ledger/leases.py, EXECUTION_LEASE_MS): the lease outlives the start function
# that took it, so it never lapses under a live execution.
EXECUTION_LEASE_MS: Final[int] = START_FUNCTION_TIMEOUT_S * 1_000
# How long an Idempotency-Key stays IN_PROGRESS before a retry may take it over (IDEMPOTENCY_IN_PROGRESS_TTL_MS):
# longer than its holder can live, so a live holder is never overtaken.
IDEMPOTENCY_IN_PROGRESS_TTL_MS: Final[int] = (START_FUNCTION_TIMEOUT_S + 30) * 1_000

# ---- The payment-status sync (saga/sync.py) -------------------------------------------------------------------

# A payment left unfinished with no execution running (parked, or its execution died) is asked about after this
# long: past any execution that could still be finishing it, and past a gateway's usual webhook delay.
SYNC_GRACE_MS: Final[int] = 60_000
# How often the sync runs (the EventBridge schedule on AWS, the local stack's worker).
SYNC_INTERVAL_MS: Final[int] = 60_000
# After this many executions a payment is left parked for an engineer (with an alert) instead of replayed again.
SYNC_MAX_EXECUTIONS: Final[int] = 6
# Card schemes let an authorization lapse after about 7 days (Stripe: `capture_before`); the sync settles one before
# that, with this margin.
AUTHORIZATION_LIFETIME_MS: Final[int] = 7 * 24 * 3_600_000
AUTHORIZATION_SAFETY_MS: Final[int] = 24 * 3_600_000

# ---- Merchant webhooks (saga/notifications/webhooks.py) -------------------------------------------------------

# One POST to a merchant's endpoint: any answer other than 2xx within this is a failed attempt (WEBHOOK_TIMEOUT_MS).
WEBHOOK_TIMEOUT_MS: Final[int] = 10_000
# After the n-th failed attempt the next waits WEBHOOK_RETRY_SCHEDULE_S[n-1] seconds, stretched by up to
# WEBHOOK_RETRY_JITTER_PERCENT at random (so endpoints that fail together are not retried in lockstep): 1 min, 5 min,
# 30 min, 2 h, 6 h, 12 h, about 20.6 h in all (22.7 h at most with the jitter). The attempt after the last delay is the
# last: WEBHOOK_MAX_ATTEMPTS in all, then the delivery is marked failed (a log line an alarm watches, a metric).
WEBHOOK_RETRY_SCHEDULE_S: Final[tuple[int, ...]] = (60, 300, 1_800, 7_200, 21_600, 43_200)
WEBHOOK_RETRY_JITTER_PERCENT: Final[int] = 10
WEBHOOK_MAX_ATTEMPTS: Final[int] = len(WEBHOOK_RETRY_SCHEDULE_S) + 1
# How often deliveries that are due are sent (an EventBridge schedule on AWS, a worker of the local stack).
WEBHOOK_DELIVERY_INTERVAL_MS: Final[int] = 60_000
# One pass claims at most this many due deliveries at a time and sends them on WEBHOOK_CONCURRENCY threads.
WEBHOOK_BATCH: Final[int] = 64
WEBHOOK_CONCURRENCY: Final[int] = 8
# The delivery function (saga.notifications.webhooks.handler) and how long one pass keeps claiming new batches.
WEBHOOK_FUNCTION_TIMEOUT_S: Final[int] = 300
WEBHOOK_PASS_BUDGET_MS: Final[int] = 120_000
# A claimed delivery is not due again for this long: the worker that claimed it records the attempt before then, or
# died (then the delivery is sent again: at-least-once, same event id, same body).
WEBHOOK_CLAIM_MS: Final[int] = WEBHOOK_FUNCTION_TIMEOUT_S * 1_000 + 60_000

# ---- Notifications (DESIGN 8: saga/notifications/) -------------------------------------------------------------

# The outbox relay publishes a row left unsent this long: NotifyMerchant publishes a committed payment's event within
# its own Task (TASK_TIMEOUT_S, with retries well under this), so the relay never races a live NotifyMerchant; it
# takes what one never published (a crash, ParkNotification, an SQS outage) and what no step publishes (disputes).
OUTBOX_RELAY_GRACE_MS: Final[int] = 60_000
# How often the relay runs (the EventBridge schedule on AWS, the local notification worker).
OUTBOX_RELAY_INTERVAL_MS: Final[int] = 60_000
# How many rows one relay pass publishes at most (store.outbox.MAX_BATCH caps it too).
OUTBOX_RELAY_BATCH: Final[int] = 100
# The notifications queue hands a message to a consumer at most this many times; then SQS moves it to the DLQ.
NOTIFICATIONS_MAX_RECEIVES: Final[int] = 5
# How long a received message stays invisible to other consumers (the queue's VisibilityTimeout).
NOTIFICATIONS_VISIBILITY_TIMEOUT_S: Final[int] = 30
# The consumer of the queue (a Lambda on AWS): one batch must end before its messages become visible again.
NOTIFICATIONS_CONSUMER_TIMEOUT_S: Final[int] = 25
# The local worker's long poll (ReceiveMessage WaitTimeSeconds; SQS allows at most 20).
NOTIFICATIONS_POLL_WAIT_S: Final[int] = 5

# ---- The fence around AuthorizeGateway (DESIGN 6) ------------------------------------------------------------

# The fenced section: the authorization at its timeout, the lookup that resolves an unknown outcome (another gateway
# call), then the one short transaction that records the result (its statements cut at the statement timeout).
FENCED_SECTION_MAX_MS: Final[int] = 2 * GATEWAY_TIMEOUT_MS + DB_STATEMENT_TIMEOUT_MS
# Covers the SET's own round trip (Redis starts the TTL before our client hears back) and clock-rate drift.
FENCE_MARGIN_MS: Final[int] = 5_000
# The fence outlives the whole invocation that holds it: Lambda kills AuthorizeGateway at STEP_LAMBDA_TIMEOUT_S, so
# nothing of ours runs in the fenced section after that, whatever the sub-bounds above leave out (waiting for a pooled
# connection, connecting, an HTTP read timeout that applies per read). A longer fence costs little: a live holder
# releases it when its section ends; only a holder that died keeps it, for at most the TTL. (AuthorizeGateway's
# FenceHeld retries wait about 15 s in all, less than the TTL: an attempt that meets a dead holder's fence gives up and
# compensates, and VoidAuthorization asks the gateway before it decides.)
FENCE_TTL_MS: Final[int] = STEP_LAMBDA_TIMEOUT_S * 1_000 + FENCE_MARGIN_MS
# Every Redis wait of the fence client (connect, read) and its one reconnect: a dead Redis costs at most
# 2 x (1 + FENCE_REDIS_RETRIES) x FENCE_SOCKET_TIMEOUT_MS before the step gives up (it fails transient, never calls
# the gateway unfenced).
FENCE_SOCKET_TIMEOUT_MS: Final[int] = 500
FENCE_REDIS_RETRIES: Final[int] = 1
FENCE_REDIS_MAX_WAIT_MS: Final[int] = 2 * (1 + FENCE_REDIS_RETRIES) * FENCE_SOCKET_TIMEOUT_MS

# ---- The operations console (saga/console/, store/operators.py) ------------------------------------------------

# An operator's session ends after this long without a request (each request seen moves the idle end on) ...
SESSION_IDLE_MS: Final[int] = 30 * 60_000
# ... and this long after it was opened, however busy: the operator logs in again.
SESSION_MAX_MS: Final[int] = 8 * 3_600_000

# ---- Relations -----------------------------------------------------------------------------------------------

# Service ceilings.
assert STEP_LAMBDA_TIMEOUT_S <= LAMBDA_MAX_TIMEOUT_S, "Lambda refuses a longer timeout"
assert START_FUNCTION_TIMEOUT_S <= LAMBDA_MAX_TIMEOUT_S, "Lambda refuses a longer timeout"
assert STATE_MACHINE_TIMEOUT_S <= EXPRESS_MAX_DURATION_S, "Express cuts an execution at 5 minutes anyway"
assert API_INTEGRATION_TIMEOUT_MS <= API_GATEWAY_MAX_INTEGRATION_TIMEOUT_MS, "API Gateway refuses a longer one"

# Steps.
assert TASK_TIMEOUT_S <= STEP_LAMBDA_TIMEOUT_S, (
    "a Task must not give up on an invocation that may still run: its retry would run beside it")
assert TASK_TIMEOUT_S < STATE_MACHINE_TIMEOUT_S, "one Task attempt must fit in the execution"
assert FENCED_SECTION_MAX_MS <= STEP_LAMBDA_TIMEOUT_S * 1_000, (
    "AuthorizeGateway must be able to finish its fenced section (authorize, lookup, record) before Lambda cuts it")
assert GATEWAY_TIMEOUT_MS < TASK_TIMEOUT_S * 1_000, "a step that calls the gateway must outlast the call"
assert DB_STATEMENT_TIMEOUT_MS < TASK_TIMEOUT_S * 1_000, "a step that writes must outlast its statement"
assert DB_STATEMENT_TIMEOUT_MS <= DB_IDLE_IN_TRANSACTION_TIMEOUT_MS <= STEP_LAMBDA_TIMEOUT_S * 1_000, (
    "an open transaction idle past a step's whole lifetime belongs to a function that is gone: its locks go back")
assert SECRET_MAX_AGE_S > 0

# The fence.
assert FENCE_TTL_MS >= FENCED_SECTION_MAX_MS + FENCE_MARGIN_MS, (
    "the fence must outlive the fenced section (gateway call at its timeout + unknown-outcome lookup + the write "
    "that records the result) with a margin, or a slow authorization runs beside a second one")
assert FENCE_TTL_MS > STEP_LAMBDA_TIMEOUT_S * 1_000, "the fence must outlive the invocation that holds it"
assert FENCE_TTL_MS > TASK_TIMEOUT_S * 1_000, "the fence must outlive the Task attempt that holds it"
assert FENCE_REDIS_MAX_WAIT_MS < FENCE_MARGIN_MS, "the margin must cover taking the fence on a slow Redis"

# The sync.
assert SYNC_GRACE_MS > 0 and SYNC_INTERVAL_MS > 0
assert SYNC_INTERVAL_MS * SYNC_MAX_EXECUTIONS < AUTHORIZATION_SAFETY_MS, (
    "every sync attempt at an authorization must fit before it lapses")
assert AUTHORIZATION_SAFETY_MS < AUTHORIZATION_LIFETIME_MS

# Merchant webhooks.
_WEBHOOK_RETRY_TOTAL_S = sum(WEBHOOK_RETRY_SCHEDULE_S)
assert _WEBHOOK_RETRY_TOTAL_S >= 20 * 3_600 and _WEBHOOK_RETRY_TOTAL_S * (100 + WEBHOOK_RETRY_JITTER_PERCENT) <= (
    30 * 3_600 * 100), "a failing endpoint is retried over about a day (20 to 30 hours, jitter included)"
assert list(WEBHOOK_RETRY_SCHEDULE_S) == sorted(WEBHOOK_RETRY_SCHEDULE_S), "the backoff only grows"
assert WEBHOOK_RETRY_SCHEDULE_S[0] * 1_000 >= WEBHOOK_DELIVERY_INTERVAL_MS, "a retry is never due before the next pass"
assert 0 <= WEBHOOK_RETRY_JITTER_PERCENT <= 50
_WEBHOOK_BATCH_MAX_MS = -(-WEBHOOK_BATCH // WEBHOOK_CONCURRENCY) * (WEBHOOK_TIMEOUT_MS + DB_STATEMENT_TIMEOUT_MS)
assert WEBHOOK_PASS_BUDGET_MS + _WEBHOOK_BATCH_MAX_MS < WEBHOOK_FUNCTION_TIMEOUT_S * 1_000, (
    "the last batch a pass claims is sent and recorded before Lambda cuts the function")
assert WEBHOOK_CLAIM_MS > WEBHOOK_FUNCTION_TIMEOUT_S * 1_000, "a claim outlives the invocation that holds it"
assert WEBHOOK_FUNCTION_TIMEOUT_S <= LAMBDA_MAX_TIMEOUT_S

# Notifications.
assert OUTBOX_RELAY_GRACE_MS > TASK_TIMEOUT_S * 1_000, (
    "the relay must not publish a row a live NotifyMerchant is publishing (a duplicate costs little, but is noise)")
assert OUTBOX_RELAY_INTERVAL_MS > 0 and OUTBOX_RELAY_BATCH > 0 and NOTIFICATIONS_MAX_RECEIVES > 1
assert NOTIFICATIONS_CONSUMER_TIMEOUT_S < NOTIFICATIONS_VISIBILITY_TIMEOUT_S, (
    "a batch still being processed must not become visible to a second consumer")
assert NOTIFICATIONS_POLL_WAIT_S <= 20, "SQS caps WaitTimeSeconds at 20"

# The console.
assert 0 < SESSION_IDLE_MS < SESSION_MAX_MS, "a session idles out before its hard end, or the idle limit means nothing"

# The start path.
assert SFN_SYNC_READ_TIMEOUT_S > STATE_MACHINE_TIMEOUT_S, "botocore must wait for the execution's own end"
assert STATE_MACHINE_TIMEOUT_S * 1_000 + LEASE_WAIT_MS < START_FUNCTION_TIMEOUT_S * 1_000, (
    "the start function waits for the lease, then for StartSyncExecution, and must record the outcome before Lambda "
    "cuts it off")
assert IDEMPOTENCY_IN_PROGRESS_TTL_MS > START_FUNCTION_TIMEOUT_S * 1_000, (
    "an Idempotency-Key must stay IN_PROGRESS longer than its holder can live, or a retry runs beside a live holder")
assert EXECUTION_LEASE_MS > STATE_MACHINE_TIMEOUT_S * 1_000, "the lease must outlive any execution run under it"
assert EXECUTION_LEASE_MS >= START_FUNCTION_TIMEOUT_S * 1_000, "the lease must outlive the start function holding it"
assert EXECUTION_LEASE_MS <= IDEMPOTENCY_IN_PROGRESS_TTL_MS, (
    "a retry that takes the key over must find the lease free (core/settings.py refuses the converse)")
assert LEASE_WAIT_MS + EXECUTION_LEASE_MS <= IDEMPOTENCY_IN_PROGRESS_TTL_MS, (
    "the lease is taken up to LEASE_WAIT_MS after the key: it must still lapse before the key's hold does")
assert 0 < START_ANSWER_BUDGET_MS < API_INTEGRATION_TIMEOUT_MS, (
    "the start answers (202 at worst) before API Gateway cuts the client off with an undocumented 504")
assert LEASE_WAIT_MS < START_ANSWER_BUDGET_MS, "a start that waited out the lease still answers within its budget"
assert LEASE_WAIT_MS < API_INTEGRATION_TIMEOUT_MS, (
    "a start waiting for the lease must answer 409 before API Gateway cuts the client off")

# The saga may outlive the API (Express runs up to 290 s, API Gateway answers within 29 s): the start answers within
# START_ANSWER_BUDGET_MS, with 202 and a Location to poll when the saga is still running (saga/start.py); the
# execution runs on in Step Functions, its steps record the payment's status, and the start function's own timeout
# still outlives the saga, so a start that is not frozen by Lambda (the local server) records the final answer too.
assert API_INTEGRATION_TIMEOUT_MS < STATE_MACHINE_TIMEOUT_S * 1_000 < START_FUNCTION_TIMEOUT_S * 1_000, (
    "the API answers before the saga may end; the start function outlives the saga to record it")
