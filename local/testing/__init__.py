"""Fixtures shared by the test suite and the benchmarks: a live local stack, throwaway PostgreSQL/Redis/moto servers.

Plain context managers and helpers only, no pytest: `tests/conftest.py` wraps them in pytest fixtures, and
`bench/*.py` use them directly.

- `local.testing.live`: `live_stack()` (the whole local stack, as `make run` starts it, in a throwaway folder),
  `LiveStack`, `TEST_ENV` (the short limits the tests run the stack with);
- `local.testing.servers`: `postgres_server()`, `redis()`, `aws_emulator()`, `reset_emulator()`.
"""
