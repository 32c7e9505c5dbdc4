"""The operations console: operators look at executions, timelines and parked payments, and replay."""
