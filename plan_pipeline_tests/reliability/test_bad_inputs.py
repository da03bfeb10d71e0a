"""Bad-input corpus (issue 9, point 5): every input either plans or is refused by
``plan-pipeline inputs validate`` with the rule named.

A small valid folder is generated (:func:`plan_pipeline.inputs.sample.generate_sample_inputs`)
and mutated once per case. For every refused case the three commands must agree, in process:

* ``inputs validate`` exits 1 and its errors are exactly the case's rule;
* ``inputs import`` exits 1 with the same error lines, and a store that already holds an input
  set and a version is unchanged, table by table, row by row;
* ``plan -I`` exits 1 with the same error lines, creates no version, starts no run and writes
  no output file;
* nothing prints a traceback.

Accepted cases (byte order marks, CRLF / CR line ends, values at the bounds, every warning at
once, nothing to plan) must plan with exit 0 and finite numbers. Every error rule of
:data:`~plan_pipeline.inputs.validation.RULES` has a refused case and every warning rule shows
up in an accepted case, so a new rule without a case fails here.
"""
from __future__ import annotations

import csv
import io
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from plan_pipeline.cli.main import main
from plan_pipeline.inputs.sample import generate_sample_inputs
from plan_pipeline.inputs.validation import ERROR, MAX_LEAD_TIME, RULES, WARNING
from plan_pipeline.planning.types import MAX_PLAN_QUANTITY
from plan_pipeline.store.table_copy import user_tables
from plan_pipeline_tests.cli.cli_helpers import HOME_VARS
from plan_pipeline_tests.project_homes import ProjectHome

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

SAMPLE_ARGS = {"families": 2, "skus_per_family": 2, "months": 3, "components_per_sku": 1, "seed": 7}
CALENDAR = "planning_calendar.json"


# ---------------------------------------------------------------------------------- folder edits


def _rows(folder: Path, file: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO((folder / file).read_text(encoding="utf-8"), newline="")))


def _write_rows(folder: Path, file: str, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    (folder / file).write_text(buf.getvalue(), encoding="utf-8")


def cell(file: str, line: int | None, column: str, value: str) -> Callable[[Path], None]:
    """Set one cell (``line`` = file line, header 1) or, with ``line=None``, the whole column."""
    def edit(folder: Path) -> None:
        rows = _rows(folder, file)
        col = rows[0].index(column)
        for n in range(1, len(rows)):
            if line is None or n == line - 1:
                rows[n][col] = value
        _write_rows(folder, file, rows)
    return edit


def append(file: str, *lines: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        with open(folder / file, "a", encoding="utf-8", newline="") as handle:
            handle.write("".join(f"{x}\n" for x in lines))
    return edit


def text(file: str, content: str | bytes) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        (folder / file).write_bytes(data)
    return edit


def replace(file: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        body = (folder / file).read_text(encoding="utf-8")
        assert old in body, (file, old)
        (folder / file).write_text(body.replace(old, new), encoding="utf-8")
    return edit


def header_only(file: str) -> Callable[[Path], None]:
    return lambda folder: _write_rows(folder, file, _rows(folder, file)[:1])


def remove(file: str) -> Callable[[Path], None]:
    return lambda folder: (folder / file).unlink()


def calendar(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        doc = json.loads((folder / CALENDAR).read_text(encoding="utf-8"))
        change(doc)
        (folder / CALENDAR).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return edit


def week(period: int, index: int, **fields) -> Callable[[dict], None]:
    return lambda doc: doc["periods"][period]["weeks"][index].update(fields)


def edits(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        for step in steps:
            step(folder)
    return edit


def every_file(transform: Callable[[str, bytes], bytes]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        for path in sorted(folder.iterdir()):
            path.write_bytes(transform(path.name, path.read_bytes()))
    return edit


# ---------------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Case:
    name: str
    rule: str  # the one error rule validate must report
    mutate: Callable[[Path], None]


# The tiny folder (2 families x 2 SKUs, 3 months 2025-01..03, one component per SKU):
# demand_family.csv lines 2-4 BIKES, 5-7 HELMETS; capacity.csv LINE-A/LINE-B per month (lines 2-7);
# mix_share.csv BK-100, BK-200, HM-100, HM-200 (lines 2-5); item.csv the 4 SKUs (lines 2-5) then
# their components BK-100-FRAME, BK-200-FRAME, HM-100-SHELL, HM-200-SHELL (lines 6-9);
# bom.csv one row per SKU (lines 2-5); the calendar has ISO-week fragments, 2025-W05 and
# 2025-W09 shared by two months.
REFUSED: list[Case] = [
    # --- files and table structure
    Case("capacity_missing", "missing_file", remove("capacity.csv")),
    Case("optional_file_empty", "file_format", text("item.csv", "")),
    Case("only_a_byte_order_mark", "file_format", text("inventory.csv", b"\xef\xbb\xbf")),
    Case("not_utf8", "file_format", text("mix_share.csv", b"family,sku,share\nBIKES,BK-100,\xff\n")),
    Case("unterminated_quote", "file_format", replace("bom.csv", "BK-200,BK-200-FRAME", '"BK-200,BK-200-FRAME')),
    Case("nul_byte_in_a_number", "not_a_number", text("open_po.csv", "item,due,qty\nBK-100,2025-01-16,7\x00\n")),
    Case("column_missing", "missing_column", replace("item.csv", "item,lt,lot,moq", "item,lt,lot,min_qty")),
    Case("column_twice", "duplicate_column", text("period_cost.csv", "period,cost,cost\n2025-01,98,98\n")),
    Case("row_too_short", "row_width", replace("demand_family.csv", "BIKES,2025-02,209", "BIKES,2025-02")),
    # --- cells
    Case("empty_sku", "empty_key", cell("mix_share.csv", 3, "sku", " ")),
    Case("empty_demand", "missing_number", cell("demand_family.csv", 3, "demand", "")),
    Case("nan_text", "not_a_number", cell("capacity.csv", 2, "capacity", "NaN")),
    Case("infinity_text", "not_a_number", cell("demand_family.csv", 2, "demand", "-inf")),
    Case("overflowing_literal", "not_a_number", cell("demand_family.csv", 2, "demand", "1e400")),
    Case("digit_separator", "not_a_number", cell("open_po.csv", 2, "qty", "1_000")),
    Case("arabic_digits", "not_a_number", cell("inventory.csv", 2, "qty", "\u0661\u0662")),
    Case("negative_capacity", "negative_number", cell("capacity.csv", 4, "capacity", "-1")),
    Case("zero_bom_qty", "non_positive_number", cell("bom.csv", 2, "qty", "0")),
    Case("demand_1e308", "value_too_large", cell("demand_family.csv", 2, "demand", "1e308")),
    Case("capacity_1e308", "value_too_large", cell("capacity.csv", 2, "capacity", "1e308")),
    Case("just_above_the_bound", "value_too_large", cell("open_po.csv", 3, "qty", "1000000000001")),
    Case("share_1e300", "value_too_large", cell("mix_share.csv", 2, "share", "1e300")),
    Case("lead_time_too_long", "value_too_large", cell("item.csv", 2, "lt", str(MAX_LEAD_TIME + 1))),
    Case("pooled_capacity_too_large", "value_too_large",
         edits(cell("capacity.csv", 2, "capacity", "6e11"), cell("capacity.csv", 3, "capacity", "6e11"))),
    Case("bom_requirement_too_large", "value_too_large",
         edits(cell("demand_family.csv", 2, "demand", "1e9"), cell("bom.csv", 2, "qty", "5000"))),
    Case("calendar_weight_too_large", "value_too_large", calendar(week(0, 0, weight=1e300))),
    Case("calendar_sequence_too_large", "value_too_large",
         calendar(lambda d: [w.update(sequence=w["sequence"] + 10**20) for p in d["periods"] for w in p["weeks"]])),
    Case("lot_2_5", "fractional_lot", cell("item.csv", 2, "lot", "2.5")),
    Case("bad_month", "bad_period", cell("period_score.csv", 2, "period", "2025-13")),
    Case("bad_due", "bad_due", cell("open_po.csv", 2, "due", "2025-02-30")),
    Case("item_twice", "duplicate_key", append("item.csv", "BK-100,5,10,0")),
    # --- cross-row / cross-file
    Case("bom_self_loop", "bom_self_loop", append("bom.csv", "BK-100-FRAME,BK-100-FRAME,1")),
    Case("bom_cycle", "bom_cycle", append("bom.csv", "BK-100-FRAME,BK-100,1")),
    Case("unknown_family", "unknown_family", append("mix_share.csv", "PUMPS,PU-100,1")),
    Case("sku_in_two_families", "sku_in_several_families", append("mix_share.csv", "HELMETS,BK-100,0.1")),
    Case("sku_named_like_a_pseudo_sku", "sku_in_several_families",
         edits(append("demand_family.csv", "LIGHTS,2025-01,30"), append("mix_share.csv", "HELMETS,LIGHTS,0.1"))),
    Case("zero_shares", "zero_shares", edits(cell("mix_share.csv", 2, "share", "0"), cell("mix_share.csv", 3, "share", "0"))),
    # --- calendar
    Case("calendar_syntax", "calendar_json", text(CALENDAR, '{"periods": [}')),
    Case("calendar_nested_too_deeply", "calendar_json", text(CALENDAR, "[" * 100000 + "]" * 100000)),
    Case("calendar_missing_field", "calendar_schema", calendar(lambda d: d["periods"][1]["weeks"][2].pop("sequence"))),
    Case("calendar_bad_date", "calendar_date", calendar(week(1, 1, end_date="2025-02-30"))),
    Case("calendar_dates_reversed", "calendar_date_order",
         calendar(lambda d: d["periods"][2].update(start_date="2025-03-31", end_date="2025-03-01"))),
    Case("calendar_negative_weight", "calendar_weight", calendar(week(0, 1, weight=-1))),
    Case("calendar_period_twice", "calendar_duplicate", calendar(lambda d: d["periods"][2].update(period="2025-02"))),
    Case("calendar_later_period_first", "calendar_sequence",
         calendar(lambda d: d["periods"].insert(0, d["periods"].pop(1)))),
    Case("calendar_weeks_against_dates", "calendar_sequence",
         calendar(lambda d: (week(0, 1, sequence=3)(d), week(0, 2, sequence=2)(d)))),
    Case("calendar_shared_week_two_sequences", "calendar_sequence", calendar(week(1, 0, sequence=6))),
    Case("calendar_week_gap", "calendar_gap", calendar(week(0, 2, start_date="2025-01-14"))),
    Case("calendar_period_gap", "calendar_gap",
         calendar(lambda d: (d["periods"][1].update(start_date="2025-02-02"), week(1, 0, start_date="2025-02-02")(d)))),
    Case("calendar_week_overlap", "calendar_overlap", calendar(week(1, 2, start_date="2025-02-08"))),
    Case("calendar_period_overlap", "calendar_overlap", calendar(lambda d: d["periods"][1].update(end_date="2025-03-01"))),
    Case("demand_before_the_calendar", "calendar_missing_period",
         edits(append("demand_family.csv", "BIKES,2024-12,5"), append("capacity.csv", "LINE-A,2024-12,9"))),
]


def _odd_but_valid(folder: Path) -> None:
    """Every warning rule at once, with unicode and quoted keys: must still plan."""
    edits(
        # unicode keys, a quoted key with a comma, padded numbers
        replace("demand_family.csv", "BIKES", "Vélos-自転車"),
        replace("mix_share.csv", "BIKES", "Vélos-自転車"),
        replace("mix_share.csv", "HM-200", '"HM-200, blue"'),
        replace("item.csv", "HM-200,", '"HM-200, blue",'),
        replace("inventory.csv", "HM-200,", '"HM-200, blue",'),
        replace("bom.csv", "HM-200,", '"HM-200, blue",'),
        cell("item.csv", 3, "lt", " 10 "),
        cell("item.csv", 4, "moq", "2.5"),  # a fractional MOQ is fine (receipts stay lot multiples)
        replace("period_score.csv", "period,score", "period,score,comment"),                 # unknown_column
        replace("period_score.csv", "2025-01,0.99", "2025-01,0.99,ok"),
        replace("period_score.csv", "2025-02,0.84", "2025-02,0.84,"),
        replace("period_score.csv", "2025-03,0.93", "2025-03,0.93,"),
        append("inventory.csv", " BK-100 ,DC-EAST,1"),                                      # key_whitespace, unknown_item
        append("demand_family.csv", "HELMETS,2025-03,4"),                                   # duplicate_summed
        append("open_po.csv", "BK-100,2026-03-01,5"),                                       # due_outside_horizon
        cell("item.csv", 5, "lot", "0.5"),                                                  # lot_below_one
        lambda f: (f / "item.csv").write_text(                                              # item_defaults
            "\n".join(x for x in (f / "item.csv").read_text(encoding="utf-8").splitlines() if not x.startswith("BK-200-FRAME")) + "\n",
            encoding="utf-8"),
        append("demand_family.csv", "LIGHTS,2025-01,30", "LIGHTS,2025-02,31"),             # family_without_mix
        append("capacity.csv", "LINE-A,2025-06,300"),                                       # capacity_without_demand
        append("demand_family.csv", "HELMETS,2025-04,12"),                                  # demand_without_capacity,
        append("inventory.csv", "HM-100-SHELL,PLANT,-3"),                                   # negative_inventory
        calendar(lambda d: d["periods"][2].update(weeks=[])),                               # calendar_empty
        calendar(lambda d: (week(0, 4, end_date="2025-02-02")(d),                            # calendar_week_outside_period
                            week(1, 0, start_date="2025-01-27")(d))),
        calendar(lambda d: [w.update(weight=0) for w in d["periods"][1]["weeks"]]),        # calendar_zero_weights
    )(folder)


def _at_the_bounds(folder: Path) -> None:
    """Every quantity at MAX_PLAN_QUANTITY (sums included), the longest lead time."""
    rows = _rows(folder, "capacity.csv")
    _write_rows(folder, "capacity.csv", [rows[0]] + [r for r in rows[1:] if r[0] == "LINE-A"])
    for file in ("inventory.csv", "open_po.csv"):
        rows, seen = _rows(folder, file), set()
        keep = [rows[0]] + [r for r in rows[1:] if not (r[0] in seen or seen.add(r[0]))]
        _write_rows(folder, file, keep)
    big = f"{MAX_PLAN_QUANTITY:.0f}"
    edits(
        cell("demand_family.csv", None, "demand", big),
        cell("capacity.csv", None, "capacity", big),
        cell("inventory.csv", None, "qty", big),
        cell("open_po.csv", None, "qty", big),
        cell("item.csv", None, "lot", big),
        cell("item.csv", None, "moq", big),
        cell("item.csv", 2, "lt", str(MAX_LEAD_TIME)),
        cell("mix_share.csv", None, "share", big),
        cell("period_cost.csv", None, "cost", big),
        cell("period_score.csv", None, "score", big),
        calendar(lambda d: [w.update(weight=MAX_PLAN_QUANTITY) for p in d["periods"] for w in p["weeks"]]),
    )(folder)


def _bom_and_line_ends(name: str, data: bytes) -> bytes:
    """A UTF-8 byte order mark on every file (CSV and JSON); CRLF or CR line ends."""
    ends = b"\r\n" if name < "mix" or name.endswith(".json") else b"\r"
    return b"\xef\xbb\xbf" + data.replace(b"\n", ends)


ACCEPTED: dict[str, tuple[Callable[[Path], None], set[str]]] = {
    # name: (mutation, the warning rules validate reports)
    "byte_order_marks_and_line_ends": (every_file(_bom_and_line_ends), set()),
    "at_the_bounds": (_at_the_bounds, set()),
    "every_warning": (_odd_but_valid, {r for r, (sev, _) in RULES.items() if sev == WARNING} - {"no_rows"}),
    "nothing_to_plan": (edits(header_only("demand_family.csv"), header_only("mix_share.csv"),
                              header_only("open_po.csv"), header_only("inventory.csv"), header_only("bom.csv")),
                        {"no_rows", "capacity_without_demand"}),
}


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad_inputs") / "valid"
    generate_sample_inputs(folder, **SAMPLE_ARGS)
    return folder


@pytest.fixture(scope="module")
def seeded_home(template, tmp_path_factory, homes) -> ProjectHome:
    """A home of the selected backend holding the valid folder as input set 'base' and a version on
    it (a template: each test works on a copy)."""
    from plan_pipeline.planning.types import PlanningParameters

    seed = homes.new(tmp_path_factory.mktemp("seed_home") / "home")
    with pytest.MonkeyPatch.context() as mp:
        _point_at(seed, mp)
        assert main(["inputs", "import", str(template), "--label", "base"]) == 0
        seed.store.create_version("v-base", "base", PlanningParameters(), source="cli")
    seed.check_no_duckdb_file()
    return seed


def _point_at(home: ProjectHome, monkeypatch) -> None:
    """Point this process (the in-process CLI) at ``home``; the undo also removes what main() sets."""
    from plan_pipeline.cli.environment import resolve_environment

    for name in HOME_VARS:
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    home.apply(monkeypatch)
    resolve_environment(None, None)


@pytest.fixture
def home(homes, tmp_path, monkeypatch, request) -> Path:
    """A fresh project home of the selected backend for in-process CLI calls (the environment
    variables pin it)."""
    fresh = homes.new(tmp_path / "home", request.addfinalizer)
    _point_at(fresh, monkeypatch)
    yield fresh.home
    fresh.check_no_duckdb_file()


@pytest.fixture
def seeded(seeded_home, tmp_path, monkeypatch, home_copy) -> ProjectHome:
    """A private copy of the seeded home, the in-process CLI pointed at it."""
    copy = home_copy(seeded_home, tmp_path / "home")
    _point_at(copy, monkeypatch)
    yield copy
    copy.check_no_duckdb_file()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(home: ProjectHome) -> dict[str, list[tuple]]:
    """Every table's rows (sorted), read directly from the home's store (DuckDB or PostgreSQL)."""
    with home.store.connect() as con:
        return {n: sorted(con.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in user_tables(con)}


def validate_errors(stdout: str) -> list[str]:
    return [line[len("error: "):] for line in stdout.splitlines() if line.startswith("error: ")]


def report_errors(stderr: str) -> list[str]:
    """The issue lines of the ``errors:`` section of a rejected import/plan's report."""
    lines = stderr.splitlines()
    assert "errors:" in lines, stderr
    out = []
    for line in lines[lines.index("errors:") + 1:]:
        if not line.startswith("  "):
            break
        out.append(line[2:])
    return out


def rule_of(issue: str) -> str:
    assert issue.endswith("]"), issue
    return issue[issue.rindex("[") + 1:-1]


def make_folder(template: Path, target: Path, mutate: Callable[[Path], None]) -> Path:
    shutil.copytree(template, target)
    mutate(target)
    return target


# ---------------------------------------------------------------------------------- refused cases


def test_the_generated_folder_is_clean(template, home, capsys):
    code, out, _err = run(capsys, "inputs", "validate", str(template))
    assert code == 0
    assert out.strip().endswith(": 0 error(s), 0 warning(s)")


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_refused_by_validate_import_and_plan_alike(case, template, seeded, tmp_path, capsys):
    folder = make_folder(template, tmp_path / case.name, case.mutate)
    home = seeded.home
    before = snapshot(seeded)
    out_dir = tmp_path / "out"

    code, out, err = run(capsys, "inputs", "validate", str(folder))
    assert code == 1
    errors = validate_errors(out)
    assert {rule_of(e) for e in errors} == {case.rule}, out
    assert "Traceback" not in out + err

    code, out, err = run(capsys, "inputs", "import", str(folder), "--label", "bad")
    assert code == 1
    assert "nothing was stored" in err
    assert report_errors(err) == errors
    assert "Traceback" not in out + err
    assert snapshot(seeded) == before

    code, out, err = run(capsys, "plan", "-I", str(folder), "-o", str(out_dir), "--version-id", "v-bad")
    assert code == 1
    assert err.startswith("error: inputs rejected, nothing was stored")
    assert report_errors(err) == errors
    assert "Traceback" not in out + err
    assert snapshot(seeded) == before  # no input set, no version, no run recorded
    assert not out_dir.exists()
    assert not (home / "dagster_home").exists()  # no Dagster run was started


def test_every_error_rule_has_a_refused_case():
    errors = {rule for rule, (severity, _) in RULES.items() if severity == ERROR}
    assert errors <= {c.rule for c in REFUSED}


def test_every_warning_rule_has_an_accepted_case():
    warnings = {rule for rule, (severity, _) in RULES.items() if severity == WARNING}
    assert warnings <= set().union(*(expected for _, expected in ACCEPTED.values()))


# ---------------------------------------------------------------------------------- accepted cases


def _plan(capsys, folder: Path, out_dir: Path) -> None:
    code, out, err = run(capsys, "plan", "-I", str(folder), "-o", str(out_dir))
    assert "Traceback" not in out + err
    assert code == 0, err


def _numbers(value) -> list[float]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return []


def assert_outputs_finite(out_dir: Path) -> None:
    files = sorted(out_dir.iterdir())
    assert {f.name for f in files} >= {"aggregate.json", "sku_week.json", "mrp.json", "plan_final.json"}
    for f in files:
        body = f.read_text(encoding="utf-8")
        assert "NaN" not in body and "Infinity" not in body and "-9223372036854775808" not in body, f.name
        if f.suffix == ".json":
            values = _numbers(json.loads(body))
            assert all(math.isfinite(v) and abs(v) <= 1e15 for v in values), f.name


@pytest.fixture(scope="module")
def base_outputs(template, tmp_path_factory, homes) -> Path:
    """The plan of the untouched folder (one Dagster run, shared by the comparisons)."""
    root = tmp_path_factory.mktemp("base_plan")
    base = homes.new(root / "home")
    with pytest.MonkeyPatch.context() as mp:
        _point_at(base, mp)
        assert main(["plan", "-I", str(template), "-o", str(root / "out")]) == 0
    base.check_no_duckdb_file()
    return root / "out"


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_accepted_inputs_plan(name, template, base_outputs, home, tmp_path, capsys):
    mutate, warnings = ACCEPTED[name]
    folder = make_folder(template, tmp_path / name, mutate)
    code, out, _err = run(capsys, "inputs", "validate", str(folder))
    assert code == 0, out
    assert validate_errors(out) == []
    assert {rule_of(x) for x in out.splitlines() if x.startswith("warning: ")} == warnings
    out_dir = tmp_path / "out"
    _plan(capsys, folder, out_dir)
    assert_outputs_finite(out_dir)

    if name == "byte_order_marks_and_line_ends":
        # the same plan as the plain folder, file for file
        assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.name for p in base_outputs.iterdir())
        for path in base_outputs.iterdir():
            assert (out_dir / path.name).read_bytes() == path.read_bytes(), path.name
    elif name == "at_the_bounds":
        # 2 families x 1e12 demand on a pooled capacity of 1e12: each gets exactly half
        rows = json.loads((out_dir / "aggregate.json").read_text())["rows"]
        assert len(rows) == 6
        for row in rows:
            assert row["demand"] == MAX_PLAN_QUANTITY
            assert row["capacity_total"] == MAX_PLAN_QUANTITY
            assert row["supply"] == MAX_PLAN_QUANTITY / 2
            assert row["backlog"] == MAX_PLAN_QUANTITY / 2
        mrp = json.loads((out_dir / "mrp.json").read_text())["rows"]
        assert mrp and all(r["lot"] == MAX_PLAN_QUANTITY for r in mrp)
        for r in mrp:  # receipts are whole lot multiples, stock balances exactly
            assert r["planned_order_receipt"] % MAX_PLAN_QUANTITY == 0
            assert r["on_hand_end"] == (r["on_hand_start"] + r["scheduled_receipts"]
                                        + r["planned_order_receipt"] - r["gross_req"])
    elif name == "nothing_to_plan":
        assert json.loads((out_dir / "aggregate.json").read_text())["rows"] == []
        assert json.loads((out_dir / "mrp.json").read_text())["rows"] == []
    if name != "nothing_to_plan":
        assert (out_dir / "report.csv").is_file()


@pytest.mark.parametrize("round_mode", ["none", "dec1", "dec2"])
def test_values_at_the_bounds_plan_in_every_round_mode(round_mode, template, home, tmp_path, capsys):
    """The conservation checks compare large float sums with a relative tolerance, so quantities
    up to MAX_PLAN_QUANTITY plan in the decimal round modes too, anchor branch included."""
    folder = make_folder(template, tmp_path / "bounds", _at_the_bounds)
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "plan", "-I", str(folder), "-o", str(out_dir), "--round", round_mode,
                         "--preset", "blend", "--cutover-date", "2025-02-12", "--apply-adjusted")
    assert "Traceback" not in out + err
    assert code == 0, err
    assert_outputs_finite(out_dir)
    rows = json.loads((out_dir / "aggregate.json").read_text())["rows"]
    assert all(row["supply"] + row["backlog"] == row["demand"] == MAX_PLAN_QUANTITY for row in rows)
