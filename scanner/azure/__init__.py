"""Azure Functions blueprints, their auth and OpenAPI document, and the Log Analytics client.

Handlers decode input, call the service layer and map errors. May import `service` and below; never `cli`
or `localhost`.
"""
