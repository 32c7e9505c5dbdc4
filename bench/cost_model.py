"""A PAPER cost model of paysaga on AWS (us-east-1) at a given daily volume, from measured per-payment figures and
the CDK settings in infra/. Nothing here is billed or measured on AWS: prices are public list prices written down
from the AWS pricing pages (names below), without free tiers, savings plans or volume tiers beyond the first.

    .venv/bin/python bench/cost_model.py    # the model with the default (illustrative) inputs
"""

from __future__ import annotations

import ast
import math
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

# --- Public list prices, us-east-1 (source: the AWS pricing page named in each comment) --------------------------
SFN_EXPRESS_USD_PER_REQUEST = 1.00 / 1e6  # AWS Step Functions pricing, Express: $1.00 per 1M requests
SFN_EXPRESS_USD_PER_GB_S = 0.00001667  # ... Express duration, first 1,000 GB-hours/month tier
SFN_EXPRESS_MEMORY_CHUNK_MB = 64  # ... billed in 64-MB chunks (our executions carry < 64 MB of state)
SFN_EXPRESS_DURATION_ROUND_MS = 100  # ... duration rounded up to the next 100 ms
SFN_STANDARD_USD_PER_TRANSITION = 0.025 / 1000  # ... Standard: $0.025 per 1,000 state transitions (comparison only)
LAMBDA_USD_PER_REQUEST = 0.20 / 1e6  # AWS Lambda pricing: $0.20 per 1M requests
LAMBDA_ARM_USD_PER_GB_S = 0.0000133334  # ... Arm (Graviton, the functions' architecture), first tier, per 1 ms
DYNAMODB_USD_PER_WRU = 0.625 / 1e6  # Amazon DynamoDB pricing, on-demand: $0.625 per 1M write request units
DYNAMODB_WRU_BYTES = 1024  # ... one WRU writes up to 1 KB (the larger of the item before and after)
AURORA_SV2_USD_PER_ACU_HOUR = 0.12  # Amazon Aurora pricing, PostgreSQL Serverless v2 (Aurora Standard)
AURORA_USD_PER_IO = 0.20 / 1e6  # ... Aurora Standard I/O: $0.20 per 1M requests
AURORA_USD_PER_GB_MONTH = 0.10  # ... Aurora Standard storage
RDS_PROXY_USD_PER_ACU_HOUR = 0.015  # Amazon RDS Proxy pricing, for Aurora Serverless v2: per ACU-hour
RDS_PROXY_MIN_ACU = 8  # ... billed for at least 8 ACUs
APIGW_REST_USD_PER_REQUEST = 3.50 / 1e6  # Amazon API Gateway pricing, REST APIs, first 333M/month
WAF_USD_PER_REQUEST = 0.60 / 1e6  # AWS WAF pricing: $0.60 per 1M requests (ACL/rule monthly fees left out)
SQS_FIFO_USD_PER_REQUEST = 0.50 / 1e6  # Amazon SQS pricing, FIFO queues: $0.50 per 1M requests
CW_LOGS_USD_PER_GB = 0.50  # Amazon CloudWatch pricing, Logs ingestion (standard): $0.50 per GB
XRAY_USD_PER_TRACE = 5.00 / 1e6  # AWS X-Ray pricing: $5.00 per 1M traces recorded
ELASTICACHE_T4G_MICRO_USD_PER_HOUR = 0.016  # Amazon ElastiCache pricing, cache.t4g.micro on-demand
NAT_USD_PER_HOUR = 0.045  # Amazon VPC pricing, NAT gateway per hour
NAT_USD_PER_GB = 0.045  # ... per GB processed
VPC_ENDPOINT_USD_PER_HOUR = 0.01  # AWS PrivateLink pricing: interface endpoint per AZ per hour
VPC_ENDPOINT_USD_PER_GB = 0.01  # ... per GB processed

# --- Assumptions (not prices; each one a guess we state) ----------------------------------------------------------
VCPU_PER_ACU = 0.25  # 1 ACU = 2 GiB; taken at an r6g's 8 GiB per vCPU
DB_TARGET_UTILISATION = 0.5  # Serverless v2 keeps headroom: scale at half the CPU busy
PEAK_TO_AVERAGE = 3.0  # the busiest hour at 3x the daily average (checks the CDK max ACU)
XRAY_SAMPLED_SHARE = 0.05  # X-Ray's default rule: 1 request/s reservoir + 5 %
# START/END/REPORT lines plus a few Powertools JSON lines (LOG_LEVEL=INFO) and one EMF metrics line per invocation.
LAMBDA_LOG_BYTES_PER_INVOCATION = 1_500
# Step Functions logs at level ALL without execution data (infra/config.py's default: the operations console's
# timelines): every event of an execution, ~350 bytes each without inputs and outputs; a payment's six Tasks write
# about 5 each (state entered, task scheduled, started, succeeded, state exited) plus the execution's own.
SFN_EVENTS_PER_PAYMENT = 32
SFN_EVENT_BYTES_NO_DATA = 350
NAT_BYTES_PER_PAYMENT = 6_000  # gateway HTTPS leaves through the NAT; AWS calls go through VPC endpoints
ENDPOINT_BYTES_PER_PAYMENT = 8_000  # Step Functions, SQS and Secrets Manager calls through interface endpoints
AWS_INVOKE_OVERHEAD_MS = 25  # Step Functions -> Lambda invoke per Task, warm, on top of the handler's own time
HOURS_PER_DAY = 24
DAYS_PER_MONTH = 30
GB = 1024**3


@dataclass(frozen=True)
class Measured:
    """What the bench measured, per payment (happy path)."""

    end_to_end_ms: float  # at the API, realistic gateway latency: what the start Lambda waits
    execution_ms: float  # ExecutionStarted -> ExecutionSucceeded
    step_ms: dict[str, float]  # per Task state
    history_bytes: float  # the execution's events as JSON, with data (the local history)
    response_bytes: float  # the stored HTTP answer in the idempotency record
    pg_cpu_s: float  # PostgreSQL server CPU per payment
    pg_write_statements: float  # INSERT/UPDATE/DELETE per payment
    pg_commits: float
    pg_bytes: float  # database growth per payment


@dataclass(frozen=True)
class Deployment:
    """The CDK settings the model depends on (infra/functions.py, infra/config.py, infra/database.py)."""

    start_memory_mb: int = 1024
    step_memory_mb: int = 512
    aurora_min_acu: float = 0.5
    aurora_max_acu: float = 8.0
    aurora_instances: int = 2  # writer + reader (scale_with_writer)
    cache_nodes: int = 2  # primary + replica, automatic failover across AZs
    nat_gateways: int = 2  # one per AZ
    azs: int = 2
    interface_endpoints: int = 4  # states, sync-states, secretsmanager, sqs (DynamoDB's is a free gateway endpoint)


def _ceil_to(value: float, step: float) -> float:
    return math.ceil(value / step) * step


def cost_per_payment(m: Measured, d: Deployment, payments_per_day: int) -> list[tuple[str, str, float]]:
    """(service, what is counted, $ per payment) rows."""
    rows: list[tuple[str, str, float]] = []
    express_s = _ceil_to(m.execution_ms + AWS_INVOKE_OVERHEAD_MS * len(m.step_ms), SFN_EXPRESS_DURATION_ROUND_MS)
    express_s /= 1000
    rows.append(("Step Functions Express", "1 request",
                 SFN_EXPRESS_USD_PER_REQUEST))
    rows.append(("Step Functions Express", f"{express_s:.1f} s x {SFN_EXPRESS_MEMORY_CHUNK_MB} MB",
                 express_s * SFN_EXPRESS_MEMORY_CHUNK_MB / 1024 * SFN_EXPRESS_USD_PER_GB_S))
    invocations = 1 + len(m.step_ms)
    rows.append(("Lambda", f"{invocations} invocations", invocations * LAMBDA_USD_PER_REQUEST))
    start_s = (m.end_to_end_ms + AWS_INVOKE_OVERHEAD_MS * len(m.step_ms)) / 1000
    rows.append(("Lambda", f"start fn {start_s * 1000:.0f} ms x {d.start_memory_mb} MB (waits the saga)",
                 start_s * d.start_memory_mb / 1024 * LAMBDA_ARM_USD_PER_GB_S))
    steps_s = sum(m.step_ms.values()) / 1000
    rows.append(("Lambda", f"6 steps {steps_s * 1000:.0f} ms x {d.step_memory_mb} MB",
                 steps_s * d.step_memory_mb / 1024 * LAMBDA_ARM_USD_PER_GB_S))
    put_wru = 1  # IN_PROGRESS record: key, fingerprint, payment id, expiry (< 1 KB)
    complete_wru = math.ceil((m.response_bytes + 300) / DYNAMODB_WRU_BYTES)  # + the record's own attributes
    rows.append(("DynamoDB on-demand", f"{put_wru + complete_wru} WRU (gate put + complete)",
                 (put_wru + complete_wru) * DYNAMODB_USD_PER_WRU))
    average_per_s = payments_per_day / (HOURS_PER_DAY * 3600)
    acu = max(d.aurora_min_acu, average_per_s * m.pg_cpu_s / VCPU_PER_ACU / DB_TARGET_UTILISATION)
    cluster_acu_hours_per_day = acu * d.aurora_instances * HOURS_PER_DAY
    rows.append(("Aurora Serverless v2", f"{acu:.2f} ACU avg x {d.aurora_instances} instances",
                 cluster_acu_hours_per_day * AURORA_SV2_USD_PER_ACU_HOUR / payments_per_day))
    ios = m.pg_write_statements + m.pg_commits
    rows.append(("Aurora Serverless v2", f"~{ios:.0f} I/Os (writes + commits; reads cached)", ios * AURORA_USD_PER_IO))
    rows.append(("Aurora Serverless v2", f"storage {m.pg_bytes / 1024:.1f} KB, 1st month",
                 m.pg_bytes / GB * AURORA_USD_PER_GB_MONTH))
    proxy_acu = max(RDS_PROXY_MIN_ACU, acu * d.aurora_instances)
    rows.append(("RDS Proxy", f"{proxy_acu:.0f} ACU billed (minimum {RDS_PROXY_MIN_ACU})",
                 proxy_acu * HOURS_PER_DAY * RDS_PROXY_USD_PER_ACU_HOUR / payments_per_day))
    rows.append(("API Gateway REST + WAF", "1 request", APIGW_REST_USD_PER_REQUEST + WAF_USD_PER_REQUEST))
    rows.append(("SQS FIFO", "send + receive + delete", 3 * SQS_FIFO_USD_PER_REQUEST))
    log_bytes = SFN_EVENTS_PER_PAYMENT * SFN_EVENT_BYTES_NO_DATA + invocations * LAMBDA_LOG_BYTES_PER_INVOCATION
    rows.append(("CloudWatch Logs", f"{log_bytes / 1024:.1f} KB (SFN level ALL, no data; Lambda JSON + EMF)",
                 log_bytes / GB * CW_LOGS_USD_PER_GB))
    rows.append(("X-Ray", f"{XRAY_SAMPLED_SHARE:.0%} of payments traced", XRAY_SAMPLED_SHARE * XRAY_USD_PER_TRACE))
    rows.append(("ElastiCache", f"{d.cache_nodes} x cache.t4g.micro (primary + replica)",
                 d.cache_nodes * ELASTICACHE_T4G_MICRO_USD_PER_HOUR * HOURS_PER_DAY / payments_per_day))
    rows.append(("NAT gateway", f"{d.nat_gateways} x hourly + {NAT_BYTES_PER_PAYMENT / 1000:.0f} KB",
                 d.nat_gateways * NAT_USD_PER_HOUR * HOURS_PER_DAY / payments_per_day
                 + NAT_BYTES_PER_PAYMENT / GB * NAT_USD_PER_GB))
    rows.append(("VPC interface endpoints", f"{d.interface_endpoints} x {d.azs} AZs hourly "
                 f"+ {ENDPOINT_BYTES_PER_PAYMENT / 1000:.0f} KB",
                 d.interface_endpoints * d.azs * VPC_ENDPOINT_USD_PER_HOUR * HOURS_PER_DAY / payments_per_day
                 + ENDPOINT_BYTES_PER_PAYMENT / GB * VPC_ENDPOINT_USD_PER_GB))
    return rows


def peak_acu(m: Measured, payments_per_day: int) -> float:
    """Writer ACUs the busiest hour needs (to compare with the CDK's max ACU)."""
    return payments_per_day / (HOURS_PER_DAY * 3600) * PEAK_TO_AVERAGE * m.pg_cpu_s / VCPU_PER_ACU / \
        DB_TARGET_UTILISATION


def standard_transitions_per_payment(m: Measured) -> int:
    """State transitions of the happy path if it ran as a Standard workflow (each Task + the Succeed state)."""
    return len(m.step_ms) + 1


def _memory_mb(source: str, class_name: str) -> int | None:
    """The memory_mb=<int> keyword given inside `class_name` of infra/functions.py (the CDK literal)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for inner in ast.walk(node):
                if isinstance(inner, ast.keyword) and inner.arg == "memory_mb" and \
                        isinstance(inner.value, ast.Constant) and isinstance(inner.value.value, int):
                    return inner.value.value
    return None


def deployment_from_infra() -> tuple[Deployment, str]:
    """Memory and capacity from infra/ when it can be read; else the defaults above, and say so."""
    defaults = Deployment()
    try:
        from infra.config import Config

        config = Config()
        source = (PROJECT_ROOT / "infra" / "functions.py").read_text()
    except Exception as error:  # infra/ is being written right now: fall back, and say so
        return defaults, f"ASSUMED (infra/ not readable: {type(error).__name__}): start 1024 MB, steps 512 MB"
    start = _memory_mb(source, "StartFunction")
    steps = _memory_mb(source, "StepFunctions")
    found = Deployment(start_memory_mb=start or defaults.start_memory_mb,
                       step_memory_mb=steps or defaults.step_memory_mb,
                       aurora_min_acu=float(config.aurora_min_acu), aurora_max_acu=float(config.aurora_max_acu))
    where = "infra/functions.py" if start and steps else "ASSUMED (memory_mb not found in infra/functions.py)"
    return found, (f"{where}: start {found.start_memory_mb} MB, steps {found.step_memory_mb} MB; infra/config.py: "
                   f"Aurora {found.aurora_min_acu}-{found.aurora_max_acu} ACU, writer + reader")


if __name__ == "__main__":
    example = Measured(end_to_end_ms=520, execution_ms=480, step_ms=dict.fromkeys(
        ("ValidatePayment", "ReserveBalance", "AuthorizeGateway", "CaptureOrVoid", "CommitLedger", "NotifyMerchant"),
        80.0), history_bytes=12_000, response_bytes=700, pg_cpu_s=0.01, pg_write_statements=12, pg_commits=8,
        pg_bytes=6_000)
    total = 0.0
    for service, what, usd in cost_per_payment(example, Deployment(), 3_000_000):
        total += usd
        print(f"{service:24} {what:50} {usd:.8f}")
    print(f"{'total':75} {total:.8f} $/payment (illustrative inputs)")
