"""Azure Functions (Python v2) entry point: creates the app and registers blueprints, nothing else."""

import azure.functions as func

from scanner.functions.api import bp as api_blueprint

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(api_blueprint)
