"""Off AWS the ARNs still need a region and an account: these, wherever the local tooling names one."""

from __future__ import annotations

from typing import Final

LOCAL_REGION: Final[str] = "eu-west-1"
LOCAL_ACCOUNT: Final[str] = "000000000000"


def lambda_arn(function_name: str) -> str:
    return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{function_name}"
