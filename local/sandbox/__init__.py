"""The sandbox gateway as a real HTTP server with SQLite state: what the sandbox adapter (steps.gateway.sandbox)
talks to off AWS."""
