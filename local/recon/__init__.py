"""Reconciliation's local tooling: the ledger landed as Parquet in a folder, DuckDB reading it, the CLI."""
