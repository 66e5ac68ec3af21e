"""`acrguard serve`: the function app's handlers in one local process (ASGI front, NCRONTAB timers, workers).

May import `service` and everything below it; never `cli` or `azure`.
"""
