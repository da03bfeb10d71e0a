"""The input inbox: drop an input-set folder into ``$PLAN_PIPELINE_INBOX`` (default
``<project home>/inbox``) and it is validated, imported, turned into a plan version and planned.

Design (the sensor never opens DuckDB; store work happens in pooled ops):

1. ``inbox_sensor`` lists the sub-folders (names starting with ``.`` or ``_`` are ignored).
   A folder is looked at once its files have not changed for
   ``$PLAN_PIPELINE_INBOX_SETTLE_SECONDS`` (default 10, so a copy in progress is not taken
   half-way). Its fingerprint is the sha256 of the known input files plus
   ``plan_parameters.json``; the cursor remembers the fingerprint of every folder already
   handled, so a folder is judged again only when its content changes.
2. The sensor validates the folder with file-level checks only
   (:func:`plan_pipeline.inputs.validation.validate_input_dir`, plus the optional
   ``plan_parameters.json``: planning parameters by field name - ``round``/``weeks`` are
   accepted for ``round_mode``/``fallback_weeks`` - and optional ``version_id`` and
   ``note``). An invalid folder gets ``_plan_pipeline_errors.txt`` inside it (every error with
   file, line, column and rule) and a sensor log warning; it is not retried until it changes.
   A valid folder loses any old errors file and the sensor requests an ``inbox_import`` run
   (run key ``inbox-import:<folder>:<fingerprint>``, tag ``plan/inbox_key``).
3. ``inbox_import`` (op in pool ``duckdb``) checks the fingerprint is unchanged, imports the
   folder as input set ``<folder>-<input hash[:12]>`` (immutable, content-hashed; the same
   files give the same label), creates version ``version_id`` from the parameters file or
   ``<folder>-<fingerprint[:12]>`` (source ``inbox``; an existing version with the same input
   set and parameters is reused, anything else fails), and registers the ``plan_version``
   partition. It launches nothing.
4. On a later evaluation the sensor sees the import run's outcome in the instance: on success
   it requests ``plan_job`` for the new partition (run key ``inbox-plan:...``, trigger
   ``inbox``); on failure it writes the run's error into ``_plan_pipeline_errors.txt``.
"""

import contextlib
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from plan_pipeline.inputs.importer import KNOWN_FILES, content_hash
from plan_pipeline.inputs.loader import read_input_text
from plan_pipeline.orchestration.parameter_config import PlanningParametersConfig, parameters_from_config
from plan_pipeline.orchestration.plan.jobs import plan_job
from plan_pipeline.orchestration.plan.partitions import (
    DUCKDB_POOL,
    PLAN_VERSION_PARTITIONS_NAME,
    plan_version_partitions,
)
from plan_pipeline.orchestration.plan.run_ledger import TRIGGER_TAG, VERSION_TAG
from plan_pipeline.orchestration.plan.run_state import run_failure_text
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.planning.parameters import ParameterError, PlanningParameters, parameter_specs
from plan_pipeline.store.repository import IDENTIFIER_RE, check_identifier, project_home
from plan_pipeline.timeutil import utc_now_text as _now_text

INBOX_ENV = "PLAN_PIPELINE_INBOX"
SETTLE_ENV = "PLAN_PIPELINE_INBOX_SETTLE_SECONDS"
DEFAULT_SETTLE_SECONDS = 10.0
PARAMETERS_FILE = "plan_parameters.json"
ERRORS_FILE = "_plan_pipeline_errors.txt"
INBOX_KEY_TAG = "plan/inbox_key"
INBOX_TRIGGER = "inbox"
IMPORT_JOB_NAME = "inbox_import"
#: A key of plan_parameters.json is a parameter name or its CLI spelling (``round``, ``weeks``).
_PARAMETER_KEYS = {**{s.cli_flag[2:].replace("-", "_"): s.name for s in parameter_specs()},
                   **{s.name: s.name for s in parameter_specs()}}


def inbox_dir() -> Path:
    env = os.environ.get(INBOX_ENV)
    return Path(env).resolve() if env else project_home() / "inbox"


def settle_seconds() -> float:
    return float(os.environ.get(SETTLE_ENV) or DEFAULT_SETTLE_SECONDS)


# ---------------------------------------------------------------------------------- folder checks
def folder_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256(content_hash(folder)[0].encode())
    params = folder / PARAMETERS_FILE
    if params.is_file():
        digest.update(b"\0" + params.read_bytes())
    return digest.hexdigest()


def newest_change(folder: Path) -> float:
    stamps = [folder.stat().st_mtime]
    for name in (*KNOWN_FILES, PARAMETERS_FILE):
        path = folder / name
        if path.is_file():
            stamps.append(path.stat().st_mtime)
    return max(stamps)


@dataclass
class InboxRequest:
    """What the sensor asks ``inbox_import`` to do with one folder."""

    folder: str
    fingerprint: str
    label: str
    version_id: str
    note: str | None
    parameters: dict  # the validated PlanningParameters (run config of PlanningParametersConfig)


def read_plan_parameters(folder: Path) -> tuple[PlanningParameters, str | None, str | None]:
    """Parse ``plan_parameters.json`` (absent = defaults). Raises ValueError naming every problem."""
    path = folder / PARAMETERS_FILE
    if not path.is_file():
        return PlanningParameters(), None, None
    try:
        document = json.loads(read_input_text(path))  # a byte order mark means what it does in the inputs
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{PARAMETERS_FILE}: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{PARAMETERS_FILE}: expected a JSON object of parameter names and values")
    values: dict[str, Any] = {}
    problems = []
    version_id = document.pop("version_id", None)
    note = document.pop("note", None)
    for key, value in document.items():
        name = _PARAMETER_KEYS.get(key)
        if name is None:
            problems.append(f"{PARAMETERS_FILE}: unknown parameter {key!r}")
        else:
            values[name] = value
    if version_id is not None and (not isinstance(version_id, str) or not IDENTIFIER_RE.match(version_id)
                                   or ".." in version_id):
        problems.append(f"{PARAMETERS_FILE}: version_id {version_id!r} must be 1-64 characters from "
                        "A-Z a-z 0-9 . _ - starting with a letter or digit")
    if note is not None and not isinstance(note, str):
        problems.append(f"{PARAMETERS_FILE}: note must be a string")
    params = None
    if not problems:
        try:
            params = PlanningParameters(**values)
        except ParameterError as exc:
            problems.extend(f"{PARAMETERS_FILE}: {p}" for p in exc.problems)
    if problems or params is None:
        raise ValueError("\n".join(problems))
    return params, version_id, note


def check_folder(folder: Path, fingerprint: str) -> tuple[InboxRequest | None, list[str]]:
    """File-level judgement of one inbox folder: (request, []) when valid, (None, errors) when not."""
    from plan_pipeline.inputs.validation import validate_input_dir

    errors: list[str] = []
    name = folder.name
    if not IDENTIFIER_RE.match(name) or ".." in name:
        errors.append(f"folder name {name!r} cannot become an input-set label: use 1-64 characters from "
                      "A-Z a-z 0-9 . _ - starting with a letter or digit")
    report = validate_input_dir(folder)
    errors.extend(str(issue) for issue in report.errors)
    if report.error_count > len(report.errors):
        errors.append(f"({report.error_count} errors in total)")
    try:
        params, version_id, note = read_plan_parameters(folder)
    except ValueError as exc:
        errors.extend(str(exc).splitlines())
        params, version_id, note = None, None, None
    if errors or params is None:
        return None, errors
    stem = name[:40]
    label = f"{stem}-{content_hash(folder)[0][:12]}"
    return InboxRequest(
        folder=str(folder),
        fingerprint=fingerprint,
        label=label,
        version_id=version_id or f"{stem}-{fingerprint[:12]}",
        note=note,
        parameters=params.to_dict(),
    ), []


def write_errors(folder: Path, fingerprint: str, title: str, lines: list[str]) -> None:
    text = [f"plan-pipeline inbox: {title}", f"checked {_now_text()} (content {fingerprint[:12]})",
            "fix the files and the folder is checked again automatically", "", *lines, ""]
    with contextlib.suppress(OSError):
        (folder / ERRORS_FILE).write_text("\n".join(text), encoding="utf-8")


def clear_errors(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / ERRORS_FILE).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------- import op
class InboxImportConfig(dg.Config):
    """Filled in by ``inbox_sensor`` for one validated inbox folder."""

    folder: str = Field(description="The inbox folder to import (set by the inbox sensor).")
    fingerprint: str = Field(description="sha256 of the folder's files when the sensor validated it; the run "
                             "refuses a folder that changed since.")
    label: str = Field(description="Input set label the folder is imported as (<folder>-<input hash>).")
    version_id: str = Field(description="Plan version created on the imported input set.")
    note: str | None = Field(default=None, description="Note of the new plan version (plan_parameters.json).")
    parameters: PlanningParametersConfig = Field(
        default=PlanningParametersConfig(),
        description="Planning parameters of the new plan version (plan_parameters.json, else the defaults).",
    )


@dg.op(
    pool=DUCKDB_POOL,
    description="Import one validated inbox folder as an input set, create its plan version and register the "
    "plan_version partition.",
)
def inbox_import_op(context: dg.OpExecutionContext, config: InboxImportConfig, plan_store: PlanStoreResource) -> str:
    from plan_pipeline.inputs.importer import import_input_dir
    from plan_pipeline.inputs.validation import InputValidationError
    from plan_pipeline.orchestration.plan.partitions import register_version_partition

    folder = Path(config.folder)
    check_identifier("input set label", config.label)
    check_identifier("version id", config.version_id)
    if not folder.is_dir():
        raise dg.Failure(description=f"inbox folder {folder} is gone")
    if folder_fingerprint(folder) != config.fingerprint:
        raise dg.Failure(description=f"inbox folder {folder} changed after it was validated; "
                         "the sensor checks the new content")
    params = parameters_from_config(config.parameters)
    store = plan_store.get_store()
    try:
        outcome = import_input_dir(store, folder, config.label)
    except InputValidationError as exc:
        raise dg.Failure(description=f"input set rejected:\n{exc}") from None
    existing = store.find_version(config.version_id)
    if existing is None:
        store.create_version(config.version_id, config.label, params, note=config.note or f"inbox folder {folder.name}",
                             source="inbox")
        version_status = "created"
    elif existing.input_set == config.label and existing.params.to_dict() == params.to_dict():
        version_status = "exists (same input set and parameters)"
    else:
        raise dg.Failure(description=f"plan version {config.version_id!r} already exists with another input set or "
                         "other parameters; choose another version_id in plan_parameters.json")
    register_version_partition(context.instance, config.version_id)
    context.add_output_metadata({
        "input_set": config.label,
        "input_set_status": outcome.status,
        "content_hash": outcome.content_hash,
        "plan_version": config.version_id,
        "plan_version_status": version_status,
        "rows": dg.MetadataValue.json(outcome.rows),
        "warnings": dg.MetadataValue.int(len(outcome.report.warnings) if outcome.report else 0),
    })
    context.log.info(f"inbox {folder.name}: input set {config.label} {outcome.status}, "
                     f"version {config.version_id} {version_status}")
    return config.version_id


@dg.job(name=IMPORT_JOB_NAME, description="Import an inbox folder and create its plan version (requested by inbox_sensor).")
def inbox_import_job():
    inbox_import_op()


# ---------------------------------------------------------------------------------- sensor
def _load_cursor(text: str | None) -> dict[str, Any]:
    state = json.loads(text) if text else {}
    state.setdefault("folders", {})
    state.setdefault("pending", {})
    return state


def evaluate_inbox(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    state = _load_cursor(context.cursor)
    folders: dict[str, dict[str, Any]] = state["folders"]
    pending: dict[str, dict[str, Any]] = state["pending"]
    instance = context.instance
    requests: list[dg.RunRequest] = []
    new_partitions: list[str] = []
    inbox = inbox_dir()

    # 1. follow up on import runs requested earlier
    for key, item in list(pending.items()):
        records = instance.get_run_records(filters=dg.RunsFilter(tags={INBOX_KEY_TAG: key}), limit=1)
        if not records:
            continue
        run = records[0].dagster_run
        folder_state = folders.get(item["folder"], {})
        current = folder_state.get("fingerprint") == item["fingerprint"]
        if run.status == dg.DagsterRunStatus.SUCCESS:
            version = item["version_id"]
            if not instance.has_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version):
                new_partitions.append(version)
            requests.append(dg.RunRequest(
                run_key=f"inbox-plan:{item['folder']}:{item['fingerprint'][:16]}",
                job_name=plan_job.name,
                partition_key=version,
                tags={VERSION_TAG: version, TRIGGER_TAG: INBOX_TRIGGER, INBOX_KEY_TAG: key},
            ))
            context.log.info(f"inbox {item['folder']}: imported as version {version}; requesting its plan run")
            if current:
                folder_state["state"] = "planned"
            del pending[key]
        elif run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            text = run_failure_text(instance, run.run_id) or f"run {run.run_id} {run.status.value.lower()}"
            context.log.warning(f"inbox {item['folder']}: import run {run.run_id} failed: {text}")
            if current:
                write_errors(inbox / item["folder"], item["fingerprint"], f"import run {run.run_id} failed",
                             text.splitlines())
                folder_state["state"] = "import_failed"
            del pending[key]

    # 2. new or changed folders
    seen = set()
    waiting = []
    if inbox.is_dir():
        settle = settle_seconds()
        for folder in sorted(inbox.iterdir()):
            if not folder.is_dir() or folder.name.startswith((".", "_")):
                continue
            seen.add(folder.name)
            if time.time() - newest_change(folder) < settle:
                waiting.append(folder.name)
                continue
            fingerprint = folder_fingerprint(folder)
            if folders.get(folder.name, {}).get("fingerprint") == fingerprint:
                continue
            request, errors = check_folder(folder, fingerprint)
            if request is None:
                write_errors(folder, fingerprint, f"{len(errors)} problem(s); nothing was imported", errors)
                context.log.warning(f"inbox {folder.name}: invalid ({len(errors)} problem(s)), see "
                                    f"{folder / ERRORS_FILE}")
                folders[folder.name] = {"fingerprint": fingerprint, "state": "invalid"}
                continue
            clear_errors(folder)
            key = f"inbox-import:{folder.name}:{fingerprint[:16]}"
            requests.append(dg.RunRequest(
                run_key=key,
                job_name=IMPORT_JOB_NAME,
                run_config={"ops": {"inbox_import_op": {"config": asdict(request)}}},
                tags={VERSION_TAG: request.version_id, TRIGGER_TAG: INBOX_TRIGGER, INBOX_KEY_TAG: key},
            ))
            pending[key] = {"folder": folder.name, "fingerprint": fingerprint, "version_id": request.version_id}
            folders[folder.name] = {"fingerprint": fingerprint, "state": "importing"}
            context.log.info(f"inbox {folder.name}: valid; requesting import as version {request.version_id}")
    for name in list(folders):
        if name not in seen:  # removed from the inbox: forget it (bringing it back re-imports idempotently)
            del folders[name]

    partitions = [plan_version_partitions.build_add_request(new_partitions)] if new_partitions else []
    skip = None
    if not requests:
        skip = (f"inbox {inbox}: nothing new" + (f" ({len(waiting)} folder(s) still changing)" if waiting else "")
                if inbox.is_dir() else f"inbox {inbox} does not exist")
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=partitions,
                           cursor=json.dumps(state, sort_keys=True), skip_reason=skip)


@dg.sensor(
    name="inbox_sensor",
    jobs=[inbox_import_job, plan_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Validate new input-set folders in the inbox ($PLAN_PIPELINE_INBOX, default <home>/inbox), "
    "import each valid one as a plan version (inbox_import) and then request its plan_job run. Reads files "
    "and the Dagster instance only.",
)
def inbox_sensor(context: dg.SensorEvaluationContext):
    return evaluate_inbox(context)


__all__ = [
    "check_folder",
    "evaluate_inbox",
    "inbox_import_job",
    "inbox_sensor",
    "read_plan_parameters",
]
