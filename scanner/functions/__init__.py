"""Azure Functions blueprints: handlers decode input, call one service function and map errors."""
