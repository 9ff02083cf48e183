"""Published workflows served as A2A 1.0 agents (the SDK's routes, mounted in the ASGI app).

The public module: `a2a_application()` and `is_a2a_path()` for a2a_site/asgi.py, and
`a2a_exposure_set()` for the workflow's page. See app.py for the edge, handler.py for how
messages and tasks map onto runs, tasks.py for the mapping itself.
"""
