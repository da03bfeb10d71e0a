"""Import an input folder into the plan store: validate, hash, store immutably (one transaction)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from plan_pipeline.inputs.loader import CALENDAR_FILE
from plan_pipeline.inputs.validation import InputValidationError, ValidationReport, load_validated_input_dir
from plan_pipeline.planning.types import INPUT_COLUMNS
from plan_pipeline.store import PlanStore
from plan_pipeline.store.repository import check_identifier

KNOWN_FILES = tuple(f"{name}.csv" for name in INPUT_COLUMNS) + (CALENDAR_FILE,)


def content_hash(folder: Path) -> tuple[str, dict[str, dict]]:
    """sha256 over the known files' names and bytes (sorted), plus per-file digests and sizes."""
    digest = hashlib.sha256()
    files = {}
    for name in sorted(KNOWN_FILES):
        path = folder / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    return digest.hexdigest(), files


@dataclass
class ImportOutcome:
    label: str
    status: str  # created | unchanged
    content_hash: str
    rows: dict[str, int] = field(default_factory=dict)
    report: ValidationReport | None = None


def import_input_dir(store: PlanStore, folder: str | Path, label: str) -> ImportOutcome:
    """Validate ``folder`` and store it as input set ``label``.

    Raises :class:`InputValidationError` (nothing stored) when validation finds errors,
    and ``PlanStoreError`` when the label is taken by different content.
    """
    check_identifier("input set label", label)
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder {folder} does not exist")
    inputs, report = load_validated_input_dir(folder)
    digest, files = content_hash(folder)
    rows = {name: len(inputs.table(name)) for name in INPUT_COLUMNS}
    for name, count in rows.items():
        if f"{name}.csv" in files:
            files[f"{name}.csv"]["rows"] = count
    status = store.import_input_set(
        label,
        inputs,
        digest,
        str(folder.resolve()),
        files,
        [str(w) for w in report.warnings],
    )
    return ImportOutcome(label, status, digest, rows, report)


__all__ = ["ImportOutcome", "InputValidationError", "content_hash", "import_input_dir"]
