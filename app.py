"""Shipyard's Chalice app: routes come from the blueprints in chalicelib/api, event
handlers are declared here. Importing this module creates no AWS client."""

from chalice import Chalice

from chalicelib.api import keys, projects, service, usage, workspaces
from chalicelib.http import middleware

# Logs go through the Powertools JSON logger (chalicelib/log.py), not chalice's text handler.
app = Chalice(app_name="shipyard", configure_logs=False)
app.register_middleware(middleware, "http")
app.register_blueprint(service.router.blueprint)
app.register_blueprint(projects.router.blueprint)
app.register_blueprint(usage.router.blueprint)
app.register_blueprint(keys.router.blueprint)
app.register_blueprint(workspaces.router.blueprint)
