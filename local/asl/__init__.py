"""A local, in-process interpreter of the Amazon States Language (JSONPath query language) with a boto3-shaped
Step Functions client, so the project's workflow runs the same definition locally as on AWS Step Functions Express."""

from local.asl.client import LocalStepFunctions
from local.asl.clock import Clock, ManualClock, SystemClock
from local.asl.definition import DefinitionError, StateMachine, load_definition
from local.asl.lambda_invoke import LambdaContext, Resolver

__all__ = [
    "Clock",
    "DefinitionError",
    "LambdaContext",
    "LocalStepFunctions",
    "ManualClock",
    "Resolver",
    "StateMachine",
    "SystemClock",
    "load_definition",
]
