"""Sample input generator: determinism, sizes, validity, calendar convention, bundled sample."""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from plan_pipeline.inputs.loader import load_input_dir
from plan_pipeline.inputs.sample import (
    BUNDLED_SAMPLE_ARGS,
    BUNDLED_SAMPLE_DIR,
    build_iso_week_calendar,
    generate_sample_inputs,
    main,
)
from plan_pipeline.inputs.validation import validate_input_dir

FILES = [
    "demand_family.csv", "capacity.csv", "mix_share.csv", "item.csv", "inventory.csv",
    "open_po.csv", "bom.csv", "period_cost.csv", "period_score.csv", "planning_calendar.json",
]


def _bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


def test_same_seed_gives_identical_files(tmp_path):
    a = generate_sample_inputs(tmp_path / "a", families=4, skus_per_family=6, components_per_sku=2, seed=11)
    b = generate_sample_inputs(tmp_path / "b", families=4, skus_per_family=6, components_per_sku=2, seed=11)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    assert {k: v for k, v in a.items() if k != "out_dir"} == {k: v for k, v in b.items() if k != "out_dir"}


def test_different_seed_gives_different_data(tmp_path):
    generate_sample_inputs(tmp_path / "a", seed=1)
    generate_sample_inputs(tmp_path / "b", seed=2)
    a, b = _bytes(tmp_path / "a"), _bytes(tmp_path / "b")
    for name in ("demand_family.csv", "capacity.csv", "mix_share.csv", "item.csv", "inventory.csv", "open_po.csv"):
        assert a[name] != b[name], name
    assert a["planning_calendar.json"] == b["planning_calendar.json"]  # the calendar depends on dates only


def test_sizes_are_honoured(tmp_path):
    out = tmp_path / "s"
    summary = generate_sample_inputs(out, families=5, skus_per_family=7, months=18, components_per_sku=2, start="2024-11")
    rows = {name: len(pd.read_csv(out / name)) for name in FILES if name.endswith(".csv")}
    assert summary["files"] == {**rows, "planning_calendar.json": 18}
    assert rows["demand_family.csv"] == 5 * 18
    assert rows["capacity.csv"] == 2 * 18
    assert rows["mix_share.csv"] == 35
    assert rows["item.csv"] == 35 + 70
    assert rows["bom.csv"] == 70
    assert rows["period_cost.csv"] == rows["period_score.csv"] == 18
    assert summary["skus"] == 35 and summary["components"] == 70
    assert summary["periods"] == ["2024-11", "2026-04"]
    mix = pd.read_csv(out / "mix_share.csv")
    assert mix.groupby("family").size().tolist() == [7] * 5
    cap = pd.read_csv(out / "capacity.csv")
    assert cap.groupby("period")["workcenter"].nunique().eq(2).all()
    bom = pd.read_csv(out / "bom.csv")
    assert bom.groupby("parent").size().eq(2).all()
    assert validate_input_dir(out).issues == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"months": 1},
        {"families": 15, "skus_per_family": 2, "components_per_sku": 4, "start": "2026-07", "months": 30},
        {"families": 2, "skus_per_family": 300, "seed": 99},
        {"families": 1, "skus_per_family": 1, "components_per_sku": 0},
    ],
)
def test_output_validates_without_issues(tmp_path, kwargs):
    generate_sample_inputs(tmp_path / "o", **kwargs)
    report = validate_input_dir(tmp_path / "o")
    assert report.issues == [], report.format()
    inputs = load_input_dir(tmp_path / "o")
    assert inputs.calendar is not None


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate_sample_inputs(tmp_path / "x", families=0)
    with pytest.raises(ValueError, match="YYYY-MM"):
        generate_sample_inputs(tmp_path / "x", start="2025-13")


# ------------------------------------------------------------------------------- calendar


def test_calendar_convention():
    cal = build_iso_week_calendar("2025-01", 12)
    periods = cal["periods"]
    assert [p["period"] for p in periods] == [f"2025-{m:02d}" for m in range(1, 13)]
    jan = periods[0]
    assert len(jan["weeks"]) == 5
    assert [w["week_code"] for w in jan["weeks"]] == ["2025-W01", "2025-W02", "2025-W03", "2025-W04", "2025-W05"]
    assert [w["weight"] for w in jan["weeks"]] == [5, 7, 7, 7, 5]
    assert (jan["weeks"][0]["start_date"], jan["weeks"][0]["end_date"]) == ("2025-01-01", "2025-01-05")

    by_code: dict[str, list[dict]] = defaultdict(list)
    for p in periods:
        days = 0
        for w in p["weeks"]:
            start, end = date.fromisoformat(w["start_date"]), date.fromisoformat(w["end_date"])
            assert w["weight"] == (end - start).days + 1
            # Monday-Sunday fragment clipped at the month boundary
            assert start.weekday() == 0 or start.day == 1
            assert end.weekday() == 6 or (end + timedelta(days=1)).day == 1
            assert f"{start.isocalendar().year}-W{start.isocalendar().week:02d}" == w["week_code"]
            days += w["weight"]
            by_code[w["week_code"]].append(w)
        assert days == (date.fromisoformat(p["end_date"]) - date.fromisoformat(p["start_date"])).days + 1
    shared = {c: ws for c, ws in by_code.items() if len(ws) == 2}
    assert "2025-W05" in shared and "2025-W09" in shared and "2025-W14" in shared
    for code, ws in shared.items():
        assert sum(w["weight"] for w in ws) == 7, code
        assert ws[0]["sequence"] == ws[1]["sequence"]
    # sequence numbers the distinct codes 1, 2, ... in calendar order; 2026-W01 is the 53rd
    order = list(dict.fromkeys(w["week_code"] for p in periods for w in p["weeks"]))
    assert [by_code[c][0]["sequence"] for c in order] == list(range(1, len(order) + 1))
    assert order[-1] == "2026-W01" and by_code["2026-W01"][0]["sequence"] == 53
    # the last week of 2025 is shared with January 2026 when the calendar goes on
    longer = build_iso_week_calendar("2025-12", 2)["periods"]
    assert longer[1]["weeks"][0]["week_code"] == "2026-W01" and longer[1]["weeks"][0]["weight"] == 4


def test_calendar_matches_reference_sample_convention(reference_dir):
    ref = json.loads((reference_dir / "inputs" / "samples_planning" / "planning_calendar.json").read_text())
    ours = build_iso_week_calendar("2025-01", 12)
    assert ours["periods"] == ref["periods"]
    assert (ours["calendar_type"], ours["week_unit"]) == (ref["calendar_type"], ref["week_unit"])


# ------------------------------------------------------------------------------- data shape


def test_capacity_is_tight_in_some_months_and_loose_in_others(tmp_path):
    for seed in (1, 7, 42):
        out = tmp_path / f"s{seed}"
        generate_sample_inputs(out, seed=seed)
        d = pd.read_csv(out / "demand_family.csv").groupby("period")["demand"].sum()
        c = pd.read_csv(out / "capacity.csv").groupby("period")["capacity"].sum()
        assert (d > c).sum() >= 2 and (d < c).sum() >= 2, seed


def test_small_sample_shares_sum_to_one_and_dues_in_horizon(tmp_path):
    out = tmp_path / "s"
    generate_sample_inputs(out)
    mix = pd.read_csv(out / "mix_share.csv")
    assert mix.groupby("family")["share"].sum().round(9).eq(1.0).all()
    assert (mix["share"] > 0).all()
    po = pd.read_csv(out / "open_po.csv", dtype=str)
    assert len(po) >= 3
    assert po["due"].str.match(r"^2025-0[12](-\d{2})?$").all()
    assert po["due"].str.len().eq(7).any()  # one month-form due
    item = pd.read_csv(out / "item.csv")
    assert ((item["moq"] % item["lot"]) == 0).all()


def test_generation_of_20000_skus_has_the_requested_size(tmp_path):
    # speed is measured by benchmarks/run_benchmark.py, not asserted here
    summary = generate_sample_inputs(tmp_path / "big", families=20, skus_per_family=1000, months=12)
    assert summary["skus"] == 20000
    assert summary["files"]["mix_share.csv"] == 20000
    assert summary["files"]["item.csv"] == 40000


# ------------------------------------------------------------------------------- bundled sample


def test_bundled_sample_is_up_to_date(tmp_path):
    """The committed files are exactly what the generator writes (regenerate, do not hand-edit)."""
    generate_sample_inputs(tmp_path / "fresh", **BUNDLED_SAMPLE_ARGS)
    assert sorted(p.name for p in BUNDLED_SAMPLE_DIR.iterdir()) == sorted(FILES)
    assert _bytes(tmp_path / "fresh") == _bytes(BUNDLED_SAMPLE_DIR)


def test_bundled_sample_loads_and_looks_like_a_product_sample():
    inputs = load_input_dir(BUNDLED_SAMPLE_DIR)
    assert list(dict.fromkeys(inputs.demand_family["family"])) == ["BIKES", "HELMETS", "LIGHTS"]
    assert inputs.mix_share["sku"].tolist()[:4] == ["BK-100", "BK-200", "BK-300", "BK-400"]
    assert len(inputs.demand_family) == 36 and len(inputs.open_po) == 4


def test_cli_writes_folder(tmp_path, capsys):
    assert main([str(tmp_path / "cli"), "--families", "2", "--skus-per-family", "3", "--months", "6"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skus"] == 6 and summary["files"]["demand_family.csv"] == 12
    assert validate_input_dir(tmp_path / "cli").issues == []
