"""A NAT gateway per AZ for the payment gateways' internet egress; VPC endpoints keep the AWS calls off it."""

from __future__ import annotations

from tests.unit.infra.support import NAMES, Synth, functions_by_name, join_text, only


def test_a_nat_gateway_in_each_az_and_functions_in_both(synth: Synth) -> None:
    nats = synth.of_type("AWS::EC2::NatGateway")
    assert len(nats) == 2
    assert len({join_text(n["Properties"]["SubnetId"]) for n in nats.values()}) == 2
    for name, (_, props) in functions_by_name(synth).items():
        assert len(props["VpcConfig"]["SubnetIds"]) == 2, name


def test_endpoints_for_step_functions_sync_secrets_manager_sqs_and_dynamodb(synth: Synth) -> None:
    endpoints = [e["Properties"] for e in synth.of_type("AWS::EC2::VPCEndpoint").values()]
    services = {join_text(e["ServiceName"]).rsplit(".", 1)[-1]: e for e in endpoints}
    assert set(services) == {"states", "sync-states", "secretsmanager", "sqs", "dynamodb"}
    for service, endpoint in services.items():
        if service == "dynamodb":
            assert endpoint["VpcEndpointType"] == "Gateway"
            continue
        assert endpoint["VpcEndpointType"] == "Interface", service
        assert endpoint["PrivateDnsEnabled"] is True, service
        assert len(endpoint["SubnetIds"]) == 2, service


def test_the_endpoints_take_https_from_the_functions_only(synth: Synth) -> None:
    endpoint_sgs = {join_text(sg) for e in synth.of_type("AWS::EC2::VPCEndpoint").values()
                    for sg in e["Properties"].get("SecurityGroupIds", [])}
    (endpoint_sg,) = endpoint_sgs
    ingress = [r["Properties"] for r in synth.of_type("AWS::EC2::SecurityGroupIngress").values()
               if join_text(r["Properties"]["GroupId"]) == endpoint_sg]
    assert ingress and all(r["FromPort"] == r["ToPort"] == 443 and "SourceSecurityGroupId" in r for r in ingress)


def test_flow_logs_record_every_connection(synth: Synth) -> None:
    _, flow_log = only(synth.of_type("AWS::EC2::FlowLog"))
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    group_id = flow_log["Properties"]["LogGroupName"]["Ref"]
    assert synth.resources[group_id]["Properties"]["LogGroupName"] == NAMES.flow_log_group
