"""Helpers of bench/saga_bench.py: SQL capture and replay, history parsing, load driving, PostgreSQL CPU, plot."""
