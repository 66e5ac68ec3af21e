"""Azure Functions (Python v2) entry point: creates the app and registers blueprints, nothing else."""

import azure.functions as func

from scanner.azure.api import bp as api_blueprint
from scanner.azure.auth import http_auth_level
from scanner.azure.dashboard import bp as dashboard_blueprint
from scanner.azure.dbupdate import bp as dbupdate_blueprint
from scanner.azure.events import bp as events_blueprint
from scanner.azure.logs import bp as logs_blueprint
from scanner.azure.manage import bp as manage_blueprint
from scanner.azure.rescan import bp as rescan_blueprint
from scanner.model.settings import Settings

app = func.FunctionApp(http_auth_level=http_auth_level(Settings.from_environ()))
app.register_functions(api_blueprint)
app.register_functions(events_blueprint)
app.register_functions(manage_blueprint)
app.register_functions(rescan_blueprint)
app.register_functions(logs_blueprint)
app.register_functions(dbupdate_blueprint)
app.register_functions(dashboard_blueprint)
