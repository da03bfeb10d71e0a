"""plan-pipeline: supply-chain planning (S&OP / PSI) on Dagster and DuckDB."""

__version__ = "0.1.0"
