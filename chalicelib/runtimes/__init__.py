"""The runtime port: where a built deployment runs.

Two adapters implement it: `local.LocalProcessRuntime` (a process on this machine, the local
default) and `aws_lambda.LambdaRuntime` (a Lambda function from the built image behind a
function URL). Both raise `DeployFailed` when a deployment cannot start.
"""


class DeployFailed(Exception):
    """A deployment could not be started; the message says why, in words for the user."""
