"""The export formats (their own light module: ``plan-pipeline export --help`` lists them
without loading the exporters)."""

EXPORT_FORMATS = ("csv", "json", "parquet", "reference")
