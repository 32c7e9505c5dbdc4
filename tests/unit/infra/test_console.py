"""The operations console on AWS (issue 17): its function behind the API's /console routes, the REQUEST authorizer in
front of every console route but the login form and its static files, and exactly the calls each one's code makes."""

from __future__ import annotations

import json
from typing import Any

from core import limits, telemetry_names
from infra.api import CONSOLE_PUBLIC_ROUTES, CONSOLE_ROUTES
from infra.console import AUTHORIZER_HANDLER, CONSOLE_HANDLER
from infra.environment import STATE_MACHINE_ARN_VARIABLES
from infra.functions import VPC_ACCESS_ACTIONS, XRAY_ACTIONS
from infra.permissions import LOG_READ_ACTIONS, SECRET_READ_ACTIONS, START_EXECUTION_ACTIONS
from steps.registry import Workflow
from tests.unit.infra.support import (
    CONSOLE,
    CONSOLE_AUTHORIZER,
    NAMES,
    Synth,
    actions_of,
    functions_by_name,
    join_text,
    only,
    resources_of,
    statements_of_function,
)
from tests.unit.infra.test_api import api_path, routes
from tests.unit.infra.test_workflow import machines


def _authorizer(synth: Synth) -> tuple[str, dict[str, Any]]:
    logical_id, authorizer = only(synth.of_type("AWS::ApiGateway::Authorizer"))
    return logical_id, authorizer["Properties"]


def _console_routes(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): props for (method, path), props in routes(synth).items()
            if path == "/console" or path.startswith("/console/")}


def _by_resource(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each resource's JSON -> the actions granted on it (the plumbing every function has aside)."""
    found: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for resource in resources_of(statement):
            found.setdefault(json.dumps(resource, sort_keys=True), set()).update(actions_of(statement))
    return found


def _log_group_id(synth: Synth, name: str) -> str:
    (found,) = [logical_id for logical_id, r in synth.of_type("AWS::Logs::LogGroup").items()
                if r["Properties"].get("LogGroupName") == name]
    return found


def _arn(logical_id: str) -> str:
    return json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}, sort_keys=True)


def _ref(logical_id: str) -> str:
    return json.dumps({"Ref": logical_id}, sort_keys=True)


def _plumbing(synth: Synth, props: dict[str, Any]) -> dict[str, set[str]]:
    """What make_function gives every function: its own log group, X-Ray and the VPC's ENI actions on '*'."""
    own_logs = _arn(props["LoggingConfig"]["LogGroup"]["Ref"])
    return {own_logs: {"logs:CreateLogStream", "logs:PutLogEvents"},
            json.dumps("*"): set(XRAY_ACTIONS) | set(VPC_ACCESS_ACTIONS)}


def _database_secret(synth: Synth) -> str:
    variables = functions_by_name(synth)[CONSOLE][1]["Environment"]["Variables"]
    return json.dumps(variables["DATABASE_SECRET_ARN"], sort_keys=True)


# ---- Routes and their authorization ---------------------------------------------------------------------------------


def test_the_login_form_and_its_static_files_are_open_and_every_other_console_route_needs_the_authorizer(
        synth: Synth) -> None:
    authorizer_id, _ = _authorizer(synth)
    console_id = functions_by_name(synth)[CONSOLE][0]
    found = _console_routes(synth)
    assert set(found) == set(CONSOLE_PUBLIC_ROUTES) | set(CONSOLE_ROUTES)
    assert set(CONSOLE_PUBLIC_ROUTES) == {
        ("GET", "/console/login"), ("POST", "/console/login"), ("GET", "/console/static/{proxy+}")}
    assert set(CONSOLE_ROUTES) == {("ANY", "/console"), ("ANY", "/console/{proxy+}")}
    for route, props in found.items():
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY" and integration["IntegrationHttpMethod"] == "POST", route
        assert f'"{console_id}"' in json.dumps(integration["Uri"]), f"{route} is not the console function's"
        assert not props.get("ApiKeyRequired", False), route
        if route in CONSOLE_PUBLIC_ROUTES:
            assert props["AuthorizationType"] == "NONE", route
            assert "AuthorizerId" not in props, route
        else:
            assert props["AuthorizationType"] == "CUSTOM", route
            assert props["AuthorizerId"] == {"Ref": authorizer_id}, route


def test_no_route_outside_the_console_uses_the_consoles_authorizer(synth: Synth) -> None:
    console = _console_routes(synth)
    for route, props in routes(synth).items():
        if route not in console:
            assert props["AuthorizationType"] == "NONE" and "AuthorizerId" not in props, route


def test_the_authorizer_reads_the_cookie_header_runs_the_authorizer_function_and_caches_nothing(
        synth: Synth) -> None:
    """A closed, revoked or idled-out session must end with the next request: no cached Allow outlives it."""
    authorizer_id, props = _authorizer(synth)
    function_id = functions_by_name(synth)[CONSOLE_AUTHORIZER][0]
    assert props["Type"] == "REQUEST"
    assert props["IdentitySource"] == "method.request.header.Cookie"
    assert props["AuthorizerResultTtlInSeconds"] == 0
    uri = join_text(props["AuthorizerUri"])
    assert ":lambda:path/2015-03-31/functions/" in uri and _arn(function_id) in uri
    # API Gateway may invoke the authorizer function as this authorizer only.
    (permission,) = [r["Properties"] for r in synth.of_type("AWS::Lambda::Permission").values()
                     if r["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    assert join_text(permission["SourceArn"]).endswith(f'/authorizers/{_ref(authorizer_id)}')


def test_api_gateway_may_invoke_the_console_function_on_the_console_routes_only(synth: Synth) -> None:
    function_id = functions_by_name(synth)[CONSOLE][0]
    permissions = [r["Properties"] for r in synth.of_type("AWS::Lambda::Permission").values()
                   if r["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}]
    assert permissions
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        source = join_text(permission["SourceArn"])
        assert "/console" in source and "/v1/" not in source, source


def test_the_console_routes_are_suppressed_for_nag_with_their_own_reasons(synth: Synth) -> None:
    """The login form's APIG4 says why it is open; the authorized routes need no APIG4 suppression at all."""
    by_route = {}
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        rules = method.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        route = (props["HttpMethod"], api_path(synth, props["ResourceId"]["Ref"]))
        by_route[route] = {rule["id"]: rule["reason"] for rule in rules}
    for route in CONSOLE_PUBLIC_ROUTES:
        assert "/console/login" in by_route[route]["AwsSolutions-APIG4"], route
        assert "Cognito" in by_route[route]["AwsSolutions-COG4"], route
    for route in CONSOLE_ROUTES:
        assert "AwsSolutions-APIG4" not in by_route[route], route
        assert "authorizer" in by_route[route]["AwsSolutions-COG4"], route


# ---- The functions -----------------------------------------------------------------------------------------------


def test_the_console_and_authorizer_functions_run_their_handlers(synth: Synth) -> None:
    by_name = functions_by_name(synth)
    console, authorizer = by_name[CONSOLE][1], by_name[CONSOLE_AUTHORIZER][1]
    assert console["Handler"] == CONSOLE_HANDLER == "saga.console.handler.handler"
    assert authorizer["Handler"] == AUTHORIZER_HANDLER == "saga.console.authorizer.handler"
    for props in (console, authorizer):
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == telemetry_names.SERVICE_CONSOLE
        assert 1 <= props["ReservedConcurrentExecutions"] <= 20
    # A replay waits for its execution (StartSyncExecution) and records its end, as the start function does, past
    # API Gateway's 29 s if it must; the authorizer answers within API Gateway's patience.
    assert console["Timeout"] == limits.START_FUNCTION_TIMEOUT_S
    assert authorizer["Timeout"] * 1_000 < limits.API_INTEGRATION_TIMEOUT_MS


def test_the_console_knows_every_workflows_machine_and_the_authorizer_none(synth: Synth) -> None:
    by_name = functions_by_name(synth)
    console = by_name[CONSOLE][1]["Environment"]["Variables"]
    authorizer = by_name[CONSOLE_AUTHORIZER][1]["Environment"]["Variables"]
    for workflow, (machine_id, _) in machines(synth).items():
        variable = STATE_MACHINE_ARN_VARIABLES[workflow]
        assert console[variable] == {"Ref": machine_id}, variable
        assert variable not in authorizer, variable
    assert "GATEWAY_SECRETS_ARN" not in console and "GATEWAY_SECRETS_ARN" not in authorizer


def test_the_console_may_replay_read_the_machines_log_groups_and_the_database_and_nothing_else(
        synth: Synth) -> None:
    _, props = functions_by_name(synth)[CONSOLE]
    statements = statements_of_function(synth, props)
    machine_ids = [machine_id for machine_id, _ in machines(synth).values()]
    log_groups = [_log_group_id(synth, NAMES.workflow_log_group(workflow)) for workflow in Workflow]
    assert len(set(log_groups)) == len(machine_ids) == len(Workflow)
    expected = _plumbing(synth, props) | {
        **{_ref(machine_id): set(START_EXECUTION_ACTIONS) for machine_id in machine_ids},
        **{_arn(group_id): set(LOG_READ_ACTIONS) for group_id in log_groups},
        _database_secret(synth): set(SECRET_READ_ACTIONS),
    }
    assert _by_resource(statements) == expected
    assert set(START_EXECUTION_ACTIONS) == {"states:StartSyncExecution"}
    assert set(LOG_READ_ACTIONS) == {"logs:FilterLogEvents"}
    assert not [a for s in statements for a in actions_of(s) if "*" in a]
    assert props["VpcConfig"]["SecurityGroupIds"], "it reaches the database from the VPC"


def test_the_authorizer_reads_the_database_secret_and_nothing_else(synth: Synth) -> None:
    _, props = functions_by_name(synth)[CONSOLE_AUTHORIZER]
    statements = statements_of_function(synth, props)
    assert _by_resource(statements) == _plumbing(synth, props) | {_database_secret(synth): set(SECRET_READ_ACTIONS)}
    assert not [a for s in statements for a in actions_of(s) if "*" in a]


def test_only_the_console_reads_log_events(synth: Synth) -> None:
    """Every other function's logs actions are its own log group's writes."""
    readers = {name for name, (_, props) in functions_by_name(synth, with_provider=True).items()
               if any(a.startswith("logs:") and a not in {"logs:CreateLogStream", "logs:PutLogEvents"}
                      for s in statements_of_function(synth, props) for a in actions_of(s))}
    assert readers == {CONSOLE}


def test_the_console_functions_depend_on_the_migrations_and_their_code_ships(synth: Synth) -> None:
    """The schema first (tests/unit/infra/test_admin.py counts them among the runtime functions); and the handlers
    the template names are in the code asset they run from."""
    by_name = functions_by_name(synth)
    for name, handler in ((CONSOLE, CONSOLE_HANDLER), (CONSOLE_AUTHORIZER, AUTHORIZER_HANDLER)):
        _, props = by_name[name]
        module, _, function = handler.rpartition(".")
        source = synth.asset(props["Code"]["S3Key"]) / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{name}: {source.name} is not in the code asset"
        assert f"def {function}(" in source.read_text(), f"{name}: {module} defines no {function}"
