"""Deploy-time and administration Lambda functions: the database's roles and migrations (`admin.migrate`, a
CloudFormation custom resource) and merchant administration (`admin.merchants`, invoked directly under IAM).

Not on the payment path: no runtime package imports this one; it may import the runtime and alembic.
"""
