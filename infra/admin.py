"""The administration functions (package `admin`), which take no payment traffic:

- the database migrations, a CloudFormation custom resource: `admin.migrate.handler` in the VPC, as the master user
  creates the roles, then as paysaga_owner runs `alembic upgrade head` (alembic.ini and migrations/ are at its code
  asset's root, infra/code_asset.py migration_code). Its properties carry a hash of the migrations, so a deploy that
  brings a new migration runs it again; everything that takes traffic depends on it (infra/stack.py), so on every
  deploy the schema is migrated before the API, the state machine, the schedule and the functions are updated;
- merchant administration, `admin.merchants.handler`: no API route, invoked with `aws lambda invoke` by whoever is
  allowed lambda:InvokeFunction on it (IAM is its authorization).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from core import telemetry_names
from infra.code_asset import migration_code
from infra.database import Database
from infra.functions import FunctionBase, make_function
from infra.paths import MIGRATION_FILES, REPO_ROOT
from infra.permissions import SECRET_READ_ACTIONS, allow

MIGRATIONS_HANDLER: Final[str] = "admin.migrate.handler"
MERCHANTS_HANDLER: Final[str] = "admin.merchants.handler"
# Creating the roles, then alembic: a long migration (an index on a large table) still fits. CloudFormation waits for
# the custom resource up to the provider's total timeout (30 minutes by default).
MIGRATIONS_TIMEOUT: Final[Duration] = Duration.minutes(5)
MERCHANTS_TIMEOUT: Final[Duration] = Duration.seconds(30)
MIGRATIONS_RESOURCE_TYPE: Final[str] = "Custom::PaysagaDatabaseSchema"
# The custom resource's property whose change makes CloudFormation run the migrations again.
MIGRATIONS_HASH_PROPERTY: Final[str] = "MigrationsHash"
# Only the migration function reads these two (admin/settings.py).
MASTER_SECRET_ARN: Final[str] = "DATABASE_MASTER_SECRET_ARN"  # noqa: S105  (a variable name, not a secret)
OWNER_SECRET_ARN: Final[str] = "DATABASE_OWNER_SECRET_ARN"  # noqa: S105
# What decides the schema and the roles: the migrations, alembic's configuration and the role setup itself.
HASHED_ENTRIES: Final[tuple[str, ...]] = (*MIGRATION_FILES, "admin/migrate.py", "core/database_roles.py")


def _files(entries: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for entry in entries:
        path = REPO_ROOT / entry
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        found += [p for p in candidates if "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return found


def migrations_hash(entries: Iterable[str] = HASHED_ENTRIES) -> str:
    """sha256 over the files (their paths and contents) that decide what the migration custom resource does."""
    digest = hashlib.sha256()
    for path in _files(entries):
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class Administration(Construct):
    def __init__(self, scope: Construct, construct_id: str, base: FunctionBase, *, database: Database) -> None:
        super().__init__(scope, construct_id)
        names = base.names
        secrets = database.secrets
        self.migrations = make_function(
            self, "Migrations", base,
            name=names.migrations_function, handler=MIGRATIONS_HANDLER, code=migration_code(),
            timeout=MIGRATIONS_TIMEOUT, memory_mb=512, reserved_concurrency=1,
            service=telemetry_names.SERVICE_ADMIN,
            environment={MASTER_SECRET_ARN: secrets["master"].secret_arn,
                         OWNER_SECRET_ARN: secrets["owner"].secret_arn},
            description="CloudFormation custom resource: database roles, then alembic upgrade head",
        )
        allow([self.migrations], SECRET_READ_ACTIONS, [secret.secret_arn for secret in secrets.values()])

        provider_log_group = base.log_policy.log_group(
            self, "ProviderLogs", names.function_log_group(names.migrations_provider_function))
        provider_role = iam.Role(
            self, "ProviderRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{names.migrations_provider_function}: invokes the migration function, writes its logs")
        provider_role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                                        resources=[provider_log_group.log_group_arn]))
        provider = cr.Provider(
            self, "Provider",
            on_event_handler=self.migrations,
            provider_function_name=names.migrations_provider_function,
            log_group=provider_log_group,
            framework_on_event_role=provider_role,
        )
        self.schema = CustomResource(
            self, "Schema",
            service_token=provider.service_token,
            resource_type=MIGRATIONS_RESOURCE_TYPE,
            properties={MIGRATIONS_HASH_PROPERTY: migrations_hash()},
        )
        # The database must take connections through the proxy, and the VPC's routes and endpoints (Secrets Manager)
        # must be in place, before the migrations run.
        self.schema.node.add_dependency(database.cluster, database.proxy, base.network.vpc)
        # The migrations set the roles' passwords from the secrets: rotate only once the roles exist.
        for rotation in database.rotations:
            rotation.node.add_dependency(self.schema)

        self.merchants = make_function(
            self, "Merchants", base,
            name=names.merchant_admin_function, handler=MERCHANTS_HANDLER,
            timeout=MERCHANTS_TIMEOUT, memory_mb=512, reserved_concurrency=2,
            service=telemetry_names.SERVICE_ADMIN,
            description="merchant administration (aws lambda invoke): create, list, rotate-key",
        )
        allow([self.merchants], SECRET_READ_ACTIONS, [database.functions_secret.secret_arn])
        _suppress_provider_findings(provider, provider_role, self.migrations, self.merchants)


def _suppress_provider_findings(provider: cr.Provider, role: iam.Role, *functions: lambda_.Function) -> None:
    NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
        id="AwsSolutions-IAM5", applies_to=[{"regex": "/^Resource::<.*Migrations[0-9A-F]{8}\\.Arn>:\\*$/g"}],
        reason="CDK's provider framework invokes the migration function through its qualified ARN ('<arn>:*'): "
               "that one function's versions, nothing else")], apply_to_children=True)
    NagSuppressions.add_resource_suppressions(provider, [
        NagPackSuppression(
            id="AwsSolutions-L1",
            reason="the custom resource provider framework's function is CDK's own, on the Node.js runtime CDK "
                   "pins for it; it only relays CloudFormation's request to the migration function"),
        NagPackSuppression(
            id="Serverless-LambdaTracing",
            reason="CDK's provider framework function only relays one CloudFormation request per deploy to the "
                   "migration function, which is traced itself"),
        NagPackSuppression(
            id="Serverless-LambdaDLQ",
            reason="CloudFormation invokes the provider and waits for its answer: a failure fails (and rolls back) "
                   "the deploy, so there is nothing a dead-letter queue could replay"),
        NagPackSuppression(
            id="Serverless-LambdaDefaultMemorySize",
            reason="CDK's provider framework function relays one small request per deploy: its default 128 MB is "
                   "enough"),
    ], apply_to_children=True)
    for function in functions:
        NagSuppressions.add_resource_suppressions(function, [NagPackSuppression(
            id="Serverless-LambdaDLQ",
            reason="invoked synchronously only (the provider framework, an operator's aws lambda invoke): the "
                   "caller sees the error and decides; a dead-letter queue only serves asynchronous invocations")])
