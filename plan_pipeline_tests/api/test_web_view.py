"""The planner web view (``/web``) through the FastAPI test client: login and the cookie, the plan
list's KPI totals, the plan page's KPI cards and PSI grid against the store, edits and locks
through the forms (actor = the key's name), lifecycle buttons by role, refusals as messages."""
from __future__ import annotations

import math
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from plan_pipeline.planning.kpis import scorecard_totals
from plan_pipeline.planning.overrides import detail_key
from plan_pipeline.planning.vocabulary import SCORECARD_KPI_NAMES, SCORECARD_LEVEL
from plan_pipeline.store import PlanStoreError
from plan_pipeline.store.rules import ACTIVE_JOB_STATUSES
from plan_pipeline_tests.api.api_helpers import BLANK_VERSION, PLANNED_VERSION

#: Every test here runs on both store backends (``--store-backend=postgres``).
pytestmark = pytest.mark.both_backends


class Elements(HTMLParser):
    """Every start tag's attributes, plus the page text (to find messages)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self._in_style = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: (v or "") for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if not self._in_style:
            self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def with_attr(self, tag: str, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and name in a]

    @property
    def page_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def login(api, role: str) -> None:
    api.client.cookies.clear()
    answer = api.client.post("/web/login", data={"key": api.keys[role]}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def page(api, path: str) -> Elements:
    answer = api.client.get(path)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"].startswith("text/html")
    return Elements(answer.text)


def grid_cells(doc: Elements) -> dict[tuple[str, str, str, str], dict[str, str]]:
    return {(a["data-sku"], a["data-week"], a["data-period"], a["data-measure"]): a
            for a in doc.with_attr("td", "data-measure")}


def cell_forms(doc: Elements) -> list[dict[str, str]]:
    return [a for a in doc.find("form") if a.get("action", "").startswith(f"/web/plans/{PLANNED_VERSION}/cells")]


def store_scorecard(api, version: str) -> dict[str, float]:
    return {name: value for name, value, _ in scorecard_totals(api.store.read_kpis(version, SCORECARD_LEVEL))}


def a_demand_cell(api, version: str = PLANNED_VERSION) -> tuple[str, str, float]:
    """(family, override key, plan demand) of a detail row whose week is not shared by two months."""
    det = api.store.read_series(version, "det")
    single = det.groupby(["sku", "week"])["period"].transform("size") == 1
    row = det[single & (det["demand"] > 0)].iloc[3]
    return str(row["family"]), detail_key(str(row["week"]), str(row["sku"])), float(row["demand"])


def test_pages_redirect_to_login_and_login_sets_a_strict_httponly_cookie(api):
    for path, back in (("/web", "%2Fweb"), (f"/web/plans/{PLANNED_VERSION}?family=LIGHTS",
                                             f"%2Fweb%2Fplans%2F{PLANNED_VERSION}%3Ffamily%3DLIGHTS")):
        answer = api.client.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/web/login?next={back}"
    form = api.client.get("/web/login")
    assert form.status_code == 200 and 'name="key"' in form.text
    wrong = api.client.post("/web/login", data={"key": "ppk_nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "unknown or revoked API key" in wrong.text
    assert "plan_api_key" not in wrong.headers.get("set-cookie", "")
    ok = api.client.post("/web/login", data={"key": api.keys["viewer"], "next": "/web/plans/base"},
                         follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/web/plans/base"
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith(f"plan_api_key={api.keys['viewer']};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "signed in as viewer-key (viewer)" in page(api, "/web").page_text
    # an off-site "next" is ignored
    away = api.client.post("/web/login", data={"key": api.keys["viewer"], "next": "https://evil.example/"},
                           follow_redirects=False)
    assert away.headers["location"] == "/web"
    out = api.client.post("/web/logout", follow_redirects=False)
    assert out.status_code == 303 and 'plan_api_key=""' in out.headers["set-cookie"]
    api.client.cookies.clear()
    assert api.client.get("/web", follow_redirects=False).status_code == 303


def test_plan_list_shows_each_version_with_the_stores_kpi_totals(api):
    login(api, "viewer")
    doc = page(api, "/web")
    versions = [a["data-version"] for a in doc.with_attr("tr", "data-version")]
    assert sorted(versions) == sorted(v.version_id for v in api.store.list_versions())
    expected = store_scorecard(api, PLANNED_VERSION)
    assert len(expected) >= 5
    shown = {a["data-kpi"]: float(a["data-value"]) for a in doc.with_attr("td", "data-kpi") if "data-value" in a}
    assert shown.keys() == expected.keys()
    for name, value in expected.items():
        assert math.isclose(shown[name], value, rel_tol=1e-12), name
    # the never-planned draft has no scorecard: every KPI cell says n/a
    text = doc.page_text
    blank_row = text[text.index(BLANK_VERSION + " draft"):]
    assert blank_row.split()[:2] == [BLANK_VERSION, "draft"]
    assert blank_row.count("n/a") >= len(SCORECARD_KPI_NAMES)


def test_plan_page_shows_kpi_cards_charts_and_the_grid_of_the_detail_plan(api):
    login(api, "viewer")
    det = api.store.read_series(PLANNED_VERSION, "det")
    families = sorted(det["family"].astype(str).unique())
    assert len(families) >= 2
    doc = page(api, f"/web/plans/{PLANNED_VERSION}")
    cards = {a["data-kpi"]: float(a["data-value"]) for a in doc.find("div", **{"class": "card"}) if "data-value" in a}
    assert cards == pytest.approx(store_scorecard(api, PLANNED_VERSION), rel=1e-12)
    for family in (families[0], families[-1]):
        doc = doc if family == families[0] else page(api, f"/web/plans/{PLANNED_VERSION}?family={family}")
        cells = grid_cells(doc)
        rows = det[det["family"].astype(str) == family]
        assert len(cells) == 3 * len(rows)  # every row of the family, three measures, nothing else
        for measure in ("demand", "supply", "backlog"):
            for sku, week, period, value in zip(rows["sku"], rows["week"], rows["period"], rows[measure]):
                assert float(cells[(str(sku), str(week), str(period), measure)]["data-value"]) == float(value)
    # a viewer gets values, not forms
    assert cell_forms(doc) == []
    assert doc.find("button", id="replan") == []
    charts = [a["src"] for a in doc.with_attr("img", "src")]
    assert f"/web/plans/{PLANNED_VERSION}/charts/family_month.png" in charts
    for src in charts:
        image = api.client.get(src)
        assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert api.client.get(f"/web/plans/{PLANNED_VERSION}/charts/..%2Fplan_store.duckdb").status_code == 404
    missing = api.client.get("/web/plans/nope")
    assert missing.status_code == 404 and "unknown plan version 'nope'" in Elements(missing.text).page_text


def test_an_edit_and_a_lock_through_the_forms_are_overrides_by_the_keys_name(api):
    login(api, "planner")
    family, key, demand = a_demand_cell(api)
    doc = page(api, f"/web/plans/{PLANNED_VERSION}?family={family}")
    assert doc.find("input", name="key", value=key)  # the cell's form carries its key
    forms = doc.find("form", action=f"/web/plans/{PLANNED_VERSION}/cells?family={family}&page=1")
    assert len(forms) == 2 * len(grid_cells(doc)) // 3  # demand and supply cells
    answer = api.client.post(f"/web/plans/{PLANNED_VERSION}/cells?family={family}&page=1",
                             data={"key": key, "field": "demand", "value": f"{demand + 17:,.0f}", "op": "set"},
                             follow_redirects=False)
    assert answer.status_code == 303
    target = urlsplit(answer.headers["location"])
    assert target.path == f"/web/plans/{PLANNED_VERSION}" and parse_qs(target.query)["family"] == [family]
    assert api.store.detail_overrides(PLANNED_VERSION) == [{"key": key, "payload": {"demand": demand + 17},
                                                            "locked": False}]
    api.client.post(f"/web/plans/{PLANNED_VERSION}/cells?family={family}", data={"key": key, "op": "lock"})
    events = api.store.read_override_events(PLANNED_VERSION)
    assert list(events["event_type"]) == ["edit", "lock"] and set(events["actor"]) == {"planner-key"}
    doc = page(api, f"/web/plans/{PLANNED_VERSION}?family={family}")
    cell = next(a for a in doc.with_attr("td", "data-key") if a["data-key"] == key and a["data-measure"] == "demand")
    assert float(cell["data-override"]) == demand + 17 and float(cell["data-value"]) == demand
    assert cell["data-locked"] == "true" and "edited" in cell["class"] and "locked" in cell["class"]
    assert [a["data-actor"] for a in doc.with_attr("tr", "data-event")] == ["planner-key", "planner-key"]
    # a bad value is a message naming the field, nothing is written
    bad = api.client.post(f"/web/plans/{PLANNED_VERSION}/cells?family={family}",
                          data={"key": key, "field": "demand", "value": "-5"})
    assert bad.status_code == 200 and "demand -5.0 must not be negative" in Elements(bad.text).page_text
    assert len(api.store.read_override_events(PLANNED_VERSION)) == 2


def test_lifecycle_buttons_follow_the_role_and_an_approved_plan_refuses_edits(api):
    def buttons(role: str) -> list[str]:
        login(api, role)
        return [a["data-action"] for a in page(api, f"/web/plans/{PLANNED_VERSION}").with_attr("button", "data-action")]

    assert buttons("viewer") == [] and buttons("approver") == []
    assert buttons("planner") == ["submit"] and buttons("admin") == ["submit"]
    api.client.post(f"/web/plans/{PLANNED_VERSION}/submit")  # as admin (the last login)
    assert api.store.get_version(PLANNED_VERSION).status == "submitted"
    assert buttons("planner") == [] and buttons("viewer") == []
    assert buttons("approver") == ["approve", "reject"]
    done = api.client.post(f"/web/plans/{PLANNED_VERSION}/approve")
    assert done.status_code == 200 and "base: submitted -> approved by approver-key" in Elements(done.text).page_text
    events = api.store.read_override_events(PLANNED_VERSION)
    assert list(zip(events["event_type"], events["actor"])) == [("submit", "admin-key"), ("approve", "approver-key")]
    login(api, "planner")
    doc = page(api, f"/web/plans/{PLANNED_VERSION}")
    assert doc.find("button", id="replan") == [] and cell_forms(doc) == []
    _, key, _ = a_demand_cell(api)
    refused = api.client.post(f"/web/plans/{PLANNED_VERSION}/cells", data={"key": key, "value": "5"})
    assert refused.status_code == 200
    assert "plan version 'base' is approved: its plan is frozen and cannot be edited" in Elements(refused.text).page_text
    assert api.store.detail_overrides(PLANNED_VERSION) == []


@pytest.mark.parametrize("path, data", [
    ("cells", {"key": "det:week=2025-W10,sku=BK-100", "value": "5"}),
    ("replan", {}),
    ("submit", {}),
    ("approve", {}),
])
def test_a_viewers_post_is_refused_with_a_message(api, path, data):
    login(api, "viewer")
    answer = api.client.post(f"/web/plans/{PLANNED_VERSION}/{path}", data=data)
    assert answer.status_code == 200
    action = {"cells": "edit", "replan": "run"}.get(path, path)
    text = Elements(answer.text).page_text
    assert f"the key 'viewer-key' has role viewer; {action} needs one of:" in text
    assert api.store.get_version(PLANNED_VERSION).status == "draft"
    assert api.store.read_override_events(PLANNED_VERSION).empty


def finished_web_run(api, timeout: float = 300.0) -> dict:
    """The newest run the web view launched, once it has ended (the launcher may run it in the
    background; the store may be busy meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            jobs = api.store.list_jobs(PLANNED_VERSION)
            web = jobs[jobs["trigger"] == "web"]
            if len(web) and web.iloc[0]["status"] not in ACTIVE_JOB_STATUSES:
                return web.iloc[0].to_dict()
        except PlanStoreError:
            pass
        assert time.monotonic() < deadline, "the web view's plan run did not finish"
        time.sleep(0.5)


def test_replan_applies_the_edit_and_the_grid_shows_the_new_number(api):
    login(api, "planner")
    family, key, demand = a_demand_cell(api)
    api.client.post(f"/web/plans/{PLANNED_VERSION}/cells?family={family}",
                    data={"key": key, "field": "demand", "value": str(demand + 40)})
    answer = api.client.post(f"/web/plans/{PLANNED_VERSION}/replan", data={"family": family})
    assert answer.status_code == 200
    text = Elements(answer.text).page_text
    assert "plan run " in text and "launched by planner-key" in text, text[:1500]
    run = finished_web_run(api)
    assert run["status"] == "success" and run["job_id"] in text
    doc = page(api, f"/web/plans/{PLANNED_VERSION}?family={family}")
    cell = next(a for a in doc.with_attr("td", "data-key") if a["data-key"] == key and a["data-measure"] == "demand")
    assert float(cell["data-value"]) == demand + 40 == float(cell["data-override"])
    det = api.store.read_series(PLANNED_VERSION, "det")
    sku, week = key.split("sku=")[1], key.split("week=")[1].split(",")[0]
    assert float(det[(det["sku"] == sku) & (det["week"] == week)]["demand"].sum()) == demand + 40


def test_the_grid_keys_a_shared_week_by_month_and_finds_each_override():
    import pandas as pd

    from plan_pipeline.api.web.psi_grid import build_grid

    rows = pd.DataFrame({
        "sku": ["A", "A", "A", "B", "B"],
        "week": ["2025-W04", "2025-W05", "2025-W05", "2025-W04", "2025-W05"],
        "period": ["2025-01", "2025-01", "2025-02", "2025-01", "2025-02"],
        "demand": [10.0, 3.0, 4.0, 20.0, 7.5],
        "supply": [10.0, 3.0, 4.0, 15.0, 7.5],
        "backlog": [0.0, 0.0, 0.0, 5.0, 0.0],
    })
    overrides = [
        {"key": "det:week=2025-W05,sku=A,period=2025-02", "payload": {"demand": 9.0}, "locked": True},
        {"key": "det:week=2025-W04,sku=B", "payload": {"supply": 20.0}, "locked": False},
    ]
    grid = build_grid("F", rows, overrides)
    assert [(c.period, c.week, c.shared) for c in grid.columns] == [
        ("2025-01", "2025-W04", False), ("2025-01", "2025-W05", True), ("2025-02", "2025-W05", True)]
    assert [(r.sku, r.measure) for r in grid.rows] == [(s, m) for s in "AB" for m in ("demand", "supply", "backlog")]
    a_demand, b_demand, b_supply = grid.rows[0], grid.rows[3], grid.rows[4]
    assert [c.key for c in a_demand.cells] == ["det:week=2025-W04,sku=A", "det:week=2025-W05,sku=A,period=2025-01",
                                               "det:week=2025-W05,sku=A,period=2025-02"]
    assert [(c.value, c.override, c.locked) for c in a_demand.cells] == [
        (10.0, None, False), (3.0, None, False), (4.0, 9.0, True)]
    # B has only the February fragment of W05: that row is the whole SKU-week, so its key has no
    # period (a key needs the period only where the SKU-week has two rows)
    assert [(c.key, c.value) for c in b_demand.cells] == [
        ("det:week=2025-W04,sku=B", 20.0), ("det:week=2025-W05,sku=B,period=2025-01", None),
        ("det:week=2025-W05,sku=B", 7.5)]
    assert (b_supply.cells[0].value, b_supply.cells[0].override) == (15.0, 20.0)
    assert build_grid("F", rows.iloc[:0], []).rows == []


def test_a_malformed_form_and_a_post_without_a_key_get_pages_not_json(api):
    anonymous = api.client.post(f"/web/plans/{PLANNED_VERSION}/submit", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/web/login?next=%2Fweb"
    login(api, "planner")
    missing = api.client.post(f"/web/plans/{PLANNED_VERSION}/cells", data={"value": "5"})
    assert missing.status_code == 400 and missing.headers["content-type"].startswith("text/html")
    assert "the form is incomplete or malformed: key: Field required" in Elements(missing.text).page_text
    not_a_number = api.client.post(f"/web/plans/{PLANNED_VERSION}/cells",
                                   data={"key": "det:week=2025-W10,sku=BK-100", "value": "ten"})
    assert "demand 'ten' is not a number" in Elements(not_a_number.text).page_text
    assert api.store.read_override_events(PLANNED_VERSION).empty


def test_the_grid_pages_through_the_skus_of_a_family(api, monkeypatch):
    from plan_pipeline.api.web import pages

    monkeypatch.setattr(pages, "GRID_SKUS_PER_PAGE", 3)
    login(api, "viewer")
    det = api.store.read_series(PLANNED_VERSION, "det")
    family = sorted(det["family"].astype(str).unique())[1]
    skus = sorted(det.loc[det["family"].astype(str) == family, "sku"].astype(str).unique())
    assert len(skus) == 4
    shown = {}
    for number in (1, 2, 3):  # a page past the last shows the last
        doc = page(api, f"/web/plans/{PLANNED_VERSION}?family={family}&page={number}")
        shown[number] = sorted({a["data-sku"] for a in doc.with_attr("td", "data-sku")})
        assert f"4 SKUs, page {min(number, 2)} of 2" in doc.page_text
    assert shown == {1: skus[:3], 2: skus[3:], 3: skus[3:]}
