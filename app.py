"""Shipyard's Chalice app: routes come from the blueprints in chalicelib/api, event
handlers are declared here. Importing this module creates no AWS client."""

from chalice import Chalice

from chalicelib.api import (
    dashboard,
    deployments,
    files,
    keys,
    mcp,
    projects,
    service,
    usage,
    workspaces,
)
from chalicelib.api.http import middleware
from chalicelib.pipeline import wiring  # noqa: F401 - subscribes the pipeline's reactions

# Logs go through the Powertools JSON logger (chalicelib/core/log.py), not chalice's text handler.
app = Chalice(app_name="shipyard", configure_logs=False)
# POST .../deploy takes a multipart archive: it must reach the view as bytes.
app.api.binary_types.append("multipart/form-data")
# Downloads of what was built (api/files.py) are bytes.
app.api.binary_types.extend(["application/octet-stream", "application/gzip", "application/zip"])
app.register_middleware(middleware, "http")
app.register_blueprint(service.router.blueprint)
app.register_blueprint(projects.router.blueprint)
app.register_blueprint(usage.router.blueprint)
app.register_blueprint(keys.router.blueprint)
app.register_blueprint(workspaces.router.blueprint)
app.register_blueprint(deployments.router.blueprint)
app.register_blueprint(mcp.router.blueprint)
app.register_blueprint(files.router.blueprint)
app.register_blueprint(dashboard.router.blueprint)


# Each handler imports the workers on its first event: an API cold start doesn't.
@app.on_sqs_message(queue="shipyard-builds", batch_size=1)
def on_builds_message(event):
    from chalicelib.workers import handlers

    handlers.on_builds_message(event)


@app.on_sqs_message(queue="shipyard-deploy-tasks", batch_size=1)
def on_deploy_task(event):
    from chalicelib.workers import handlers

    handlers.on_deploy_task(event)


@app.on_cw_event({"source": ["aws.codebuild"], "detail-type": ["CodeBuild Build State Change"]})
def on_codebuild_state_change(event):
    from chalicelib.workers import handlers

    handlers.on_codebuild_state_change(event)


@app.schedule("rate(1 minute)")
def sweep(event):
    from chalicelib.workers import handlers

    handlers.on_schedule(event)
