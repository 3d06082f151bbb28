"""Shipyard's Chalice app: routes come from the blueprints in chalicelib/api, event
handlers are declared here. Importing this module creates no AWS client."""

from chalice import Chalice

from chalicelib.api import keys, projects, service, workspaces
from chalicelib.http import middleware

app = Chalice(app_name="shipyard")
app.register_middleware(middleware, "http")
app.register_blueprint(service.router.blueprint)
app.register_blueprint(projects.router.blueprint)
app.register_blueprint(keys.router.blueprint)
app.register_blueprint(workspaces.router.blueprint)
