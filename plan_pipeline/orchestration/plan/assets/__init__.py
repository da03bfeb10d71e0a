"""Plan assets, one module per stage, all partitioned by plan version and pooled on ``duckdb``."""
