"""Adapters of the runtime port (ports.AppRuntime): where a built deployment runs.

`local_apps.LocalApps` runs it as a process on this machine (`local.LocalProcessRuntime`),
the local default; `aws_lambda.LambdaApps` as a Lambda function from the built image behind
a function URL (`aws_lambda.LambdaRuntime`).
"""
