"""Plan versions from the Dagster UI: the create/duplicate jobs and the sensor that plans the new version."""
