"""Plan store schema as forward-only migrations.

Each migration is a list of DDL statements applied in one transaction; the
``schema_migrations`` table records which ones ran. Opening a store applies
whatever is missing, so an older file is upgraded in place.

Deviations from the reference schema (persistence.md section 12) are deliberate:

* timestamps are ``TIMESTAMP`` (UTC) instead of epoch milliseconds;
* references to ``plan_versions`` / ``input_sets`` are enforced by the repository inside
  the writing transaction, not by declared foreign keys: DuckDB 2.0 refuses to delete a
  parent row in the same transaction that deleted its children ("still referenced"),
  which would make the one-transaction cascade impossible. Deletes cascade explicitly,
  children first, in one transaction (G1, G26);
* ``plan_series`` has ``period_key`` and ``family_key`` in its key, so the two
  month fragments of a shared week stay separate rows (no double counting), and
  ``row_seq`` keeps each level's natural row order. Its key (version, level, bucket type,
  bucket, period, item, location) is enforced by the repository before every write, not by
  a declared primary key: DuckDB's ART index made writing and replacing millions of rows
  several times slower (measured: a 795k-row level replace 6.4 s with the index, see
  docs/performance.md), and every write goes through the repository anyway;
* ``plan_kpis`` has a ``level`` and a ``category`` (plan KPIs vs. the report's
  capacity/service rows);
* ``plan_override_events.override_id`` is nullable so plan-level events (submit,
  approve) need no pseudo-override (G7);
* ``plan_jobs`` records every Dagster run (queued/started/success/failure/canceled) with
  its error text (G24), whatever its job: ``version_id`` is NULL for runs of no version and is
  not checked against ``plan_versions`` (a refused run of an unknown version keeps its row);
  ``plan_backfill_runs`` is created by a migration (G16).
"""
from __future__ import annotations

from plan_pipeline.planning.types import INPUT_COLUMNS
from plan_pipeline.store.series_tables import SERIES_TABLES, load_series_statements, series_view_sql

NUMERIC_INPUT_COLUMNS = {
    "demand_family": {"demand"},
    "capacity": {"capacity"},
    "mix_share": {"share"},
    "item": {"lt", "lot", "moq"},
    "inventory": {"qty"},
    "open_po": {"qty"},
    "bom": {"qty"},
    "period_cost": {"cost"},
    "period_score": {"score"},
}


def input_table_name(name: str) -> str:
    return f"input_{name}"


def _input_table_ddl() -> list[str]:
    ddl = []
    for name, columns in INPUT_COLUMNS.items():
        cols = ",\n  ".join(
            f"{c} DOUBLE NOT NULL" if c in NUMERIC_INPUT_COLUMNS[name] else f"{c} TEXT NOT NULL"
            for c in columns
        )
        ddl.append(
            f"""CREATE TABLE {input_table_name(name)} (
  input_set TEXT NOT NULL,
  row_no INTEGER NOT NULL,
  {cols},
  PRIMARY KEY (input_set, row_no)
)"""
        )
    return ddl


MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "initial plan store",
        [
            """CREATE TABLE input_sets (
  label TEXT PRIMARY KEY,
  content_hash TEXT NOT NULL,
  source_path TEXT,
  files_json JSON NOT NULL,
  calendar_json JSON,
  warnings_json JSON NOT NULL DEFAULT '[]',
  imported_at TIMESTAMP NOT NULL
)""",
            *_input_table_ddl(),
            """CREATE TABLE plan_versions (
  version_id TEXT PRIMARY KEY,
  input_set TEXT,
  status TEXT NOT NULL,
  read_only BOOLEAN NOT NULL DEFAULT FALSE,
  round_mode TEXT NOT NULL,
  lt_unit TEXT NOT NULL,
  week_days INTEGER NOT NULL,
  fallback_weeks INTEGER NOT NULL,
  cutover_date TEXT,
  recon_window_days INTEGER,
  anchor_policy TEXT,
  preset TEXT,
  blend_split_next DOUBLE,
  blend_weight_mode TEXT NOT NULL,
  apply_adjusted BOOLEAN NOT NULL,
  max_adjust_ratio DOUBLE,
  carryover TEXT NOT NULL,
  carryover_split DOUBLE,
  tol_abs DOUBLE NOT NULL,
  tol_rel DOUBLE NOT NULL,
  note TEXT,
  source TEXT,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
)""",
            "CREATE INDEX idx_plan_versions_input_set ON plan_versions(input_set)",
            """CREATE TABLE plan_series (
  version_id TEXT NOT NULL,
  level TEXT NOT NULL,
  row_seq INTEGER NOT NULL,
  time_bucket_type TEXT NOT NULL,
  time_bucket_key TEXT NOT NULL,
  period_key TEXT NOT NULL DEFAULT '',
  item_key TEXT NOT NULL,
  family_key TEXT,
  location_key TEXT NOT NULL DEFAULT 'global',
  location_type TEXT DEFAULT 'global',
  source TEXT,
  policy TEXT,
  cutover_flag BOOLEAN NOT NULL DEFAULT FALSE,
  boundary_zone TEXT,
  window_index INTEGER,
  lock_flag BOOLEAN NOT NULL DEFAULT FALSE,
  source_run_id TEXT,
  demand DOUBLE NOT NULL DEFAULT 0,
  supply DOUBLE NOT NULL DEFAULT 0,
  backlog DOUBLE NOT NULL DEFAULT 0,
  inventory_open DOUBLE NOT NULL DEFAULT 0,
  inventory_close DOUBLE NOT NULL DEFAULT 0,
  prod_qty DOUBLE NOT NULL DEFAULT 0,
  ship_qty DOUBLE NOT NULL DEFAULT 0,
  capacity_used DOUBLE NOT NULL DEFAULT 0,
  cost_total DOUBLE NOT NULL DEFAULT 0,
  spill_in DOUBLE,
  spill_out DOUBLE,
  adjustment DOUBLE,
  carryover_in DOUBLE,
  carryover_out DOUBLE,
  scheduled_receipts DOUBLE,
  planned_receipt DOUBLE,
  planned_release DOUBLE,
  lot_size DOUBLE,
  min_order_qty DOUBLE,
  lead_time_weeks INTEGER,
  extra_json JSON NOT NULL DEFAULT '{}',
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
)""",
            """CREATE TABLE plan_series_layouts (
  version_id TEXT NOT NULL,
  level TEXT NOT NULL,
  columns_json JSON NOT NULL,
  attrs_json JSON NOT NULL DEFAULT '{}',
  row_count BIGINT NOT NULL,
  source_run_id TEXT,
  written_at TIMESTAMP NOT NULL,
  PRIMARY KEY (version_id, level)
)""",
            """CREATE TABLE plan_kpis (
  version_id TEXT NOT NULL,
  level TEXT NOT NULL,
  row_seq INTEGER NOT NULL,
  category TEXT NOT NULL,
  metric TEXT NOT NULL,
  bucket_type TEXT NOT NULL DEFAULT 'total',
  bucket_key TEXT NOT NULL DEFAULT 'total',
  value DOUBLE,
  unit TEXT,
  source TEXT,
  source_run_id TEXT,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL,
  PRIMARY KEY (version_id, level, category, metric, bucket_type, bucket_key)
)""",
            "CREATE INDEX idx_plan_kpis_metric_bucket ON plan_kpis(metric, bucket_type, bucket_key)",
            "CREATE SEQUENCE seq_plan_overrides START 1",
            """CREATE TABLE plan_overrides (
  id BIGINT PRIMARY KEY DEFAULT nextval('seq_plan_overrides'),
  version_id TEXT NOT NULL,
  level TEXT NOT NULL,
  key_hash TEXT NOT NULL,
  payload_json JSON NOT NULL DEFAULT '{}',
  lock_flag BOOLEAN NOT NULL DEFAULT FALSE,
  locked_by TEXT,
  weight DOUBLE,
  author TEXT,
  source TEXT,
  row_version INTEGER NOT NULL DEFAULT 1,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL,
  UNIQUE (version_id, level, key_hash)
)""",
            "CREATE SEQUENCE seq_plan_override_events START 1",
            """CREATE TABLE plan_override_events (
  id BIGINT PRIMARY KEY DEFAULT nextval('seq_plan_override_events'),
  override_id BIGINT,
  version_id TEXT NOT NULL,
  level TEXT NOT NULL,
  key_hash TEXT NOT NULL,
  event_type TEXT NOT NULL,
  event_ts TIMESTAMP NOT NULL,
  payload_json JSON NOT NULL DEFAULT '{}',
  actor TEXT NOT NULL DEFAULT 'system',
  notes TEXT
)""",
            "CREATE INDEX idx_plan_override_events_version_ts ON plan_override_events(version_id, event_ts)",
            """CREATE TABLE plan_jobs (
  job_id TEXT PRIMARY KEY,
  version_id TEXT NOT NULL,
  job_name TEXT,
  status TEXT NOT NULL,
  trigger TEXT,
  submitted_at TIMESTAMP,
  started_at TIMESTAMP,
  finished_at TIMESTAMP,
  duration_ms BIGINT,
  retry_count INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  tags_json JSON NOT NULL DEFAULT '{}',
  updated_at TIMESTAMP NOT NULL
)""",
            "CREATE INDEX idx_plan_jobs_version ON plan_jobs(version_id)",
            "CREATE INDEX idx_plan_jobs_status_submitted ON plan_jobs(status, submitted_at)",
            """CREATE TABLE plan_backfill_runs (
  run_id TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  status TEXT NOT NULL,
  dry_run BOOLEAN NOT NULL DEFAULT FALSE,
  versions_imported INTEGER NOT NULL DEFAULT 0,
  versions_skipped INTEGER NOT NULL DEFAULT 0,
  versions_failed INTEGER NOT NULL DEFAULT 0,
  rows_written BIGINT NOT NULL DEFAULT 0,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP,
  duration_ms BIGINT,
  message TEXT
)""",
            """CREATE TABLE plan_artifacts (
  version_id TEXT NOT NULL,
  name TEXT NOT NULL,
  json_text JSON NOT NULL,
  source TEXT,
  created_at TIMESTAMP NOT NULL,
  PRIMARY KEY (version_id, name)
)""",
        ],
    ),
]

MIGRATIONS.append(
    (
        2,
        "detail supply_plan as a typed plan_series column",
        [
            # The detail levels' supply_plan was the only field left in extra_json for them;
            # building that JSON per row made each 310k-row detail write ~0.3 s slower at
            # checkpoint (docs/performance.md). Existing rows move their value over.
            "ALTER TABLE plan_series ADD COLUMN supply_plan DOUBLE",
            """UPDATE plan_series
SET supply_plan = CAST(extra_json->>'$.supply_plan' AS DOUBLE),
    extra_json = CAST(json_merge_patch(extra_json, '{"supply_plan": null}') AS JSON)
WHERE level IN ('det', 'det_adjusted') AND json_exists(extra_json, '$.supply_plan')""",
        ],
    )
)

# What SQL and DWH users query: every version's published plan, nothing staged (migrations 3, 7).
SERIES_CURRENT_VIEW = """CREATE VIEW plan_series_current AS
SELECT s.* FROM plan_series s JOIN plan_levels l
  ON l.version_id = s.version_id AND l.level = s.level AND l.run_id = s.source_run_id
WHERE l.state = 'published'"""

# Placeholder run id for plan rows written before runs were recorded on every row.
UNRECORDED_RUN = "unrecorded"

MIGRATIONS.append(
    (
        3,
        "plan publication: levels staged per run, published whole; deleted-version tombstones",
        [
            # One row per (version, level, run): which run wrote a level, its frame layout, and
            # whether it is the version's published plan. A run stages its levels; a complete
            # run is published by switching these rows in one transaction, so readers never see
            # a mix of two runs (docs/operations.md, "What a reader sees").
            """CREATE TABLE plan_levels (
  version_id TEXT NOT NULL,
  level TEXT NOT NULL,
  run_id TEXT NOT NULL,
  table_name TEXT NOT NULL,
  state TEXT NOT NULL,
  applicable BOOLEAN NOT NULL DEFAULT TRUE,
  columns_json JSON,
  attrs_json JSON NOT NULL DEFAULT '{}',
  row_count BIGINT NOT NULL,
  written_at TIMESTAMP NOT NULL,
  published_at TIMESTAMP,
  PRIMARY KEY (version_id, level, run_id)
)""",
            f"UPDATE plan_series SET source_run_id = '{UNRECORDED_RUN}' WHERE source_run_id IS NULL",
            f"UPDATE plan_kpis SET source_run_id = '{UNRECORDED_RUN}' WHERE source_run_id IS NULL",
            f"""INSERT INTO plan_levels
SELECT version_id, level, coalesce(source_run_id, '{UNRECORDED_RUN}'), 'plan_series', 'published', TRUE,
       columns_json, attrs_json, row_count, written_at, written_at
FROM plan_series_layouts""",
            """INSERT INTO plan_levels
SELECT version_id, level, min(source_run_id), 'plan_kpis', 'published', TRUE, NULL, '{}', count(*),
       max(created_at), max(created_at)
FROM plan_kpis GROUP BY version_id, level""",
            "DROP TABLE plan_series_layouts",
            # plan_kpis: a staged run's KPI rows live beside the published ones, so the run id is
            # part of the row key; like plan_series, the key is enforced by the repository.
            """CREATE TABLE plan_kpis_v3 (
  version_id TEXT NOT NULL,
  level TEXT NOT NULL,
  row_seq INTEGER NOT NULL,
  category TEXT NOT NULL,
  metric TEXT NOT NULL,
  bucket_type TEXT NOT NULL DEFAULT 'total',
  bucket_key TEXT NOT NULL DEFAULT 'total',
  value DOUBLE,
  unit TEXT,
  source TEXT,
  source_run_id TEXT,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
)""",
            "INSERT INTO plan_kpis_v3 SELECT * FROM plan_kpis",
            "DROP INDEX idx_plan_kpis_metric_bucket",
            "DROP TABLE plan_kpis",
            "ALTER TABLE plan_kpis_v3 RENAME TO plan_kpis",
            "CREATE INDEX idx_plan_kpis_metric_bucket ON plan_kpis(metric, bucket_type, bucket_key)",
            # What SQL and DWH users query: every version's published plan, nothing staged.
            SERIES_CURRENT_VIEW,
            """CREATE VIEW plan_kpis_current AS
SELECT k.* FROM plan_kpis k JOIN plan_levels l
  ON l.version_id = k.version_id AND l.level = k.level AND l.run_id = k.source_run_id
WHERE l.state = 'published'""",
            # A deleted version id is never silently reused: its tombstone outlives the version
            # (and its audit trail keeps the 'delete' event).
            """CREATE TABLE plan_version_tombstones (
  version_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  input_set TEXT,
  deleted_at TIMESTAMP NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT NOT NULL,
  archive_path TEXT
)""",
        ],
    )
)

MIGRATIONS.append(
    (
        4,
        "plan_jobs: one row for every Dagster run, version_id nullable",
        [
            # The run ledger maps every run of the code location (trim, backup, exports, legacy
            # imports have no version; a refused run may name a version the store never had), so
            # version_id is nullable and never checked against plan_versions. DuckDB refuses to
            # alter a column an index depends on: the indexes are dropped and recreated.
            "DROP INDEX idx_plan_jobs_version",
            "DROP INDEX idx_plan_jobs_status_submitted",
            "ALTER TABLE plan_jobs ALTER COLUMN version_id DROP NOT NULL",
            "CREATE INDEX idx_plan_jobs_version ON plan_jobs(version_id)",
            "CREATE INDEX idx_plan_jobs_status_submitted ON plan_jobs(status, submitted_at)",
        ],
    )
)

MIGRATIONS.append(
    (
        5,
        "plan_api_keys: API keys of the Plans API (hash only) and their roles",
        [
            # A key is shown once when created; only its SHA-256 is stored. The name is the
            # audit actor of every write made with the key; a revoked key stays (audit history).
            """CREATE TABLE plan_api_keys (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  key_prefix TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  created_by TEXT NOT NULL,
  revoked_at TIMESTAMP,
  revoked_by TEXT
)""",
        ],
    )
)

MIGRATIONS.append(
    (
        6,
        "plan_write_log: one row per plan write (source, operation, level, rows), for /metrics",
        [
            # Append-only: every plan write of the store (a run's staged level, a publication, an
            # edit, a lifecycle step, a legacy import, a removal ...) adds its rows here INSIDE its
            # own transaction (store/write_log.py), whichever process wrote (CLI, Dagster run, API,
            # backfill); GET /metrics reads totals from it. No key, no index: one INSERT per write,
            # aggregates scan it whole. Deleting a version keeps its rows (an audit of writes).
            """CREATE TABLE plan_write_log (
  ts TIMESTAMP NOT NULL,
  source TEXT NOT NULL,
  operation TEXT NOT NULL,
  version_id TEXT,
  level TEXT NOT NULL,
  rows BIGINT NOT NULL,
  run_id TEXT
)""",
        ],
    )
)

MIGRATIONS.append(
    (
        7,
        "narrow store: plan_series is a view over typed tables per level family",
        [
            # Inserting a big level into the 41-column table cost 3x an insert into a table of the
            # columns it uses (store/series_tables.py, docs/performance.md "The narrow store").
            # The rows move into plan_series_detail / plan_series_mrp / plan_series_wide; a row
            # that would not read back identically through the view fails the migration
            # (nothing changes then). DuckDB refuses to drop a table a view depends on: the
            # view plan_series_current goes first and is recreated on top of the new view.
            "DROP VIEW plan_series_current",
            "ALTER TABLE plan_series RENAME TO plan_series_v6",
            *(table.ddl() for table in SERIES_TABLES),
            *load_series_statements("plan_series_v6"),
            "DROP TABLE plan_series_v6",
            series_view_sql(),
            SERIES_CURRENT_VIEW,
        ],
    )
)

SCHEMA_VERSION = MIGRATIONS[-1][0]

# Child tables of a plan version, in the order an explicit cascade must delete them (and an
# archived version's tables are loaded back in: plan_levels before plan_series, whose rows of the
# narrow tables take their timestamps from it). ``plan_series`` is the view: statements that
# write map it to its physical tables (store/series_tables.py).
VERSION_CHILD_TABLES = (
    "plan_override_events",
    "plan_overrides",
    "plan_levels",
    "plan_series",
    "plan_kpis",
    "plan_jobs",
    "plan_artifacts",
)


def apply_migrations(con) -> list[int]:
    """Apply every missing migration, each in its own transaction. Returns the applied ids."""
    con.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TIMESTAMP NOT NULL
)"""
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for number, name, statements in MIGRATIONS:
        if number in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [number, name]
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(number)
    return applied


def current_schema_version(con) -> int:
    row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)
