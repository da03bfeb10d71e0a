"""Oracle cases of the reference material: names, input folders and planning parameters.

Each ``oracle/<case>/CMD.txt`` holds the reference driver's ``command:`` line; its options
are mapped onto :class:`PlanningParameters` (driver defaults for everything not given).
Use :func:`case_names` for ``pytest.mark.parametrize`` (works even when the reference
folder is absent) and :func:`load_case` inside the test (fails under CI when absent).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline_tests.conftest import REFERENCE_DIR, require_reference

# Known cases, used for parametrisation when the reference folder is not available.
KNOWN_CASES = (
    "db_storage_both_default",
    "default",
    "det_near_cutover_apply",
    "det_near_nowindow_cutover_apply",
    "lt_week",
    "preset_det_near_no_cutover",
    "round_dec1",
    "round_dec2",
    "round_none",
    "tight_default",
    "tight_det_near_cutover_apply",
    "weekly_set1_default",
)

# driver option -> (PlanningParameters field, converter)
_VALUE_OPTIONS = {
    "--round": ("round_mode", str),
    "--lt-unit": ("lt_unit", str),
    "--week-days": ("week_days", int),
    "--weeks": ("fallback_weeks", int),
    "--cutover-date": ("cutover_date", str),
    "--recon-window-days": ("recon_window_days", int),
    "--anchor-policy": ("anchor_policy", str),
    "--preset": ("preset", str),
    "--blend-split-next": ("blend_split_next", float),
    "--blend-weight-mode": ("blend_weight_mode", str),
    "--max-adjust-ratio": ("max_adjust_ratio", float),
    "--carryover": ("carryover", str),
    "--carryover-split": ("carryover_split", float),
    "--tol-abs": ("tol_abs", float),
    "--tol-rel": ("tol_rel", float),
}
_FLAG_OPTIONS = {"--apply-adjusted": "apply_adjusted"}
_IGNORED_VALUE_OPTIONS = {"--storage", "--version-id", "-o", "--output-dir"}


@dataclass(frozen=True)
class OracleCase:
    name: str
    oracle_dir: Path          # reference/oracle/<case>
    input_dir: Path           # reference/inputs/<name>
    params: PlanningParameters  # as given on the command line (call .resolved() for presets)
    storage: str | None
    version_id: str | None
    argv: tuple[str, ...]     # the driver arguments after the script name

    def oracle_file(self, name: str) -> Path:
        return self.oracle_dir / name

    @property
    def has_calendar(self) -> bool:
        return (self.input_dir / "planning_calendar.json").is_file()


def parse_command(command: str, reference_dir: Path) -> tuple[Path, PlanningParameters, dict, tuple[str, ...]]:
    """Parse a driver command line into (input dir, parameters, extra options, argv)."""
    tokens = shlex.split(command)
    script = next(i for i, t in enumerate(tokens) if t.endswith("run_planning_pipeline.py"))
    argv = tuple(tokens[script + 1:])
    values: dict = {}
    extra: dict = {"storage": None, "version_id": None}
    input_dir: Path | None = None
    i = 0
    while i < len(argv):
        tok = argv[i]
        opt, eq, inline = tok.partition("=")
        def take() -> str:
            nonlocal i
            if eq:
                return inline
            i += 1
            return argv[i]
        if opt in ("-I", "--input-dir"):
            raw = take()
            parts = Path(raw).parts
            if "inputs" in parts:
                input_dir = reference_dir.joinpath(*parts[parts.index("inputs"):])
            else:
                input_dir = reference_dir / raw
        elif opt in _VALUE_OPTIONS:
            field_name, conv = _VALUE_OPTIONS[opt]
            values[field_name] = conv(take())
        elif opt in _FLAG_OPTIONS:
            values[_FLAG_OPTIONS[opt]] = True
        elif opt in _IGNORED_VALUE_OPTIONS:
            val = take()
            if opt == "--storage":
                extra["storage"] = val
            elif opt == "--version-id":
                extra["version_id"] = val
        else:
            raise ValueError(f"unknown driver option {tok!r} in {command!r}")
        i += 1
    if input_dir is None:
        raise ValueError(f"no -I/--input-dir in {command!r}")
    return input_dir, PlanningParameters(**values), extra, argv


def case_names() -> list[str]:
    """Case folder names (discovered when the reference exists, else the known list)."""
    oracle = REFERENCE_DIR / "oracle"
    if oracle.is_dir():
        return sorted(p.name for p in oracle.iterdir() if (p / "CMD.txt").is_file())
    return list(KNOWN_CASES)


def load_case(name: str) -> OracleCase:
    """Load one case (skips/fails via :func:`require_reference` when the reference is absent)."""
    ref = require_reference()
    folder = ref / "oracle" / name
    cmd_file = folder / "CMD.txt"
    command = None
    for line in cmd_file.read_text(encoding="utf-8").splitlines():
        if line.startswith("command:"):
            command = line[len("command:"):].strip()
            break
    if command is None:
        raise ValueError(f"{cmd_file}: no 'command:' line")
    input_dir, params, extra, argv = parse_command(command, ref)
    return OracleCase(
        name=name,
        oracle_dir=folder,
        input_dir=input_dir,
        params=params,
        storage=extra["storage"],
        version_id=extra["version_id"],
        argv=argv,
    )


def all_cases() -> list[OracleCase]:
    return [load_case(n) for n in case_names()]


def load_oracle_json(case: OracleCase, name: str) -> dict:
    import json

    return json.loads(case.oracle_file(name).read_text(encoding="utf-8"))


def json_mismatches(
    actual, expected, tol: float = 1e-9, strict_types: bool = True, path: str = "$", ignore_keys=("note",)
) -> list[str]:
    """Structural comparison: same keys in the same order, same list lengths and order,
    numbers within ``tol``; with ``strict_types`` an ``int`` must stay ``int`` and a ``float`` a
    ``float`` (the reference writes ``12`` in int mode and ``12.0`` otherwise).
    Returns human-readable differences (empty when equal)."""
    out: list[str] = []

    def walk(a, b, p):
        if isinstance(b, dict):
            if not isinstance(a, dict):
                out.append(f"{p}: expected object, got {type(a).__name__}")
                return
            if list(a.keys()) != list(b.keys()):
                out.append(f"{p}: keys {list(a.keys())} != {list(b.keys())}")
                return
            for k in b:
                if k in ignore_keys:
                    continue
                walk(a[k], b[k], f"{p}.{k}")
        elif isinstance(b, list):
            if not isinstance(a, list) or len(a) != len(b):
                out.append(f"{p}: length {len(a) if isinstance(a, list) else type(a).__name__} != {len(b)}")
                return
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{p}[{i}]")
        elif isinstance(b, (int, float)) and not isinstance(b, bool):
            if isinstance(a, bool) or not isinstance(a, (int, float)):
                out.append(f"{p}: {a!r} != {b!r}")
            elif abs(a - b) > tol:
                out.append(f"{p}: {a!r} != {b!r} (|d|={abs(a - b):.3g})")
            elif strict_types and type(a) is not type(b):
                out.append(f"{p}: type {type(a).__name__} != {type(b).__name__} ({a!r} vs {b!r})")
        elif a != b or type(a) is not type(b):
            out.append(f"{p}: {a!r} != {b!r}")

    walk(actual, expected, path)
    return out


def assert_json_matches(actual, expected, **kwargs) -> None:
    diffs = json_mismatches(actual, expected, **kwargs)
    assert not diffs, f"{len(diffs)} difference(s):\n" + "\n".join(diffs[:30])
