"""Every log group encrypted with the stack's logs key, kept a year and retained; the keys rotate; the SNS topics are
encrypted with the messages key."""

from __future__ import annotations

import json

from infra.keys import LOGS_KEY_ACTIONS
from tests.unit.infra.support import NAMES, Synth, functions_by_name, join_text, only


def _key_ids(synth: Synth) -> dict[str, str]:
    """Alias name -> logical id of the key it names."""
    return {alias["Properties"]["AliasName"]: alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
            for alias in synth.of_type("AWS::KMS::Alias").values()}


def test_the_keys_rotate_and_outlive_the_stack(synth: Synth) -> None:
    keys = _key_ids(synth)
    assert set(keys) == {NAMES.logs_key_alias, NAMES.messages_key_alias, NAMES.data_key_alias}
    for logical_id in keys.values():
        key = synth.resources[logical_id]
        assert key["Properties"]["EnableKeyRotation"] is True
        assert key["DeletionPolicy"] == "Retain"


def test_the_logs_key_lets_cloudwatch_logs_of_this_region_use_it_for_this_accounts_log_groups(synth: Synth) -> None:
    policy = synth.resources[_key_ids(synth)[NAMES.logs_key_alias]]["Properties"]["KeyPolicy"]
    (statement,) = [s for s in policy["Statement"] if "Service" in s.get("Principal", {})]
    assert join_text(statement["Principal"]["Service"]) == 'logs.{"Ref": "AWS::Region"}.amazonaws.com'
    assert set(statement["Action"]) == set(LOGS_KEY_ACTIONS)
    condition = join_text(statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert condition.endswith(':log-group:*') and '"AWS::AccountId"' in condition


def test_every_log_group_is_encrypted_kept_a_year_and_retained(synth: Synth) -> None:
    logs_key = {"Fn::GetAtt": [_key_ids(synth)[NAMES.logs_key_alias], "Arn"]}
    groups = synth.of_type("AWS::Logs::LogGroup")
    assert len(groups) >= len(functions_by_name(synth, with_provider=True)) + 4  # + state machine, API, flow logs, RDS
    for logical_id, group in groups.items():
        props = group["Properties"]
        assert props["KmsKeyId"] == logs_key, logical_id
        assert props["RetentionInDays"] == 365, logical_id
        assert group["DeletionPolicy"] == "Retain" and group["UpdateReplacePolicy"] == "Retain", logical_id
        assert isinstance(props["LogGroupName"], str) or "Fn::Join" in props["LogGroupName"], logical_id


def test_every_function_logs_to_its_own_named_log_group(synth: Synth) -> None:
    groups = {logical_id: g["Properties"]["LogGroupName"]
              for logical_id, g in synth.of_type("AWS::Logs::LogGroup").items()}
    for name, (_, props) in functions_by_name(synth, with_provider=True).items():
        group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group_id] == f"/aws/lambda/{name}", name


def test_the_sns_topics_are_encrypted_with_the_messages_key(synth: Synth) -> None:
    messages_key = _key_ids(synth)[NAMES.messages_key_alias]
    topics = synth.of_type("AWS::SNS::Topic")
    assert {t["Properties"]["TopicName"] for t in topics.values()} >= {NAMES.notifications_topic, NAMES.alarm_topic}
    for logical_id, topic in topics.items():
        assert json.dumps(topic["Properties"]["KmsMasterKeyId"]).count(messages_key) == 1, logical_id


def test_the_api_access_logs_are_named_for_the_stack(synth: Synth) -> None:
    _, stage = only(synth.of_type("AWS::ApiGateway::Stage"))
    group_id = stage["Properties"]["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
    assert synth.resources[group_id]["Properties"]["LogGroupName"] == NAMES.api_access_log_group
