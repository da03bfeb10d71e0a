"""Shared by the plan report tests: a project home whose versions are planned for real (store and
Dagster instance), and a strict reading of the written page."""
from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline_tests.project_homes import ProjectHome

#: HTML elements that have no end tag.
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}


def plan_home(home: ProjectHome, versions: dict[str, tuple[Path, str, PlanningParameters]]):
    """Import each input folder, create each version (``{version: (folder, label, params)}``)
    and materialize it with ``plan_job`` on the home's instance and store; returns the CLI environment."""
    from plan_pipeline.cli.environment import resolve_environment
    from plan_pipeline.orchestration.plan.launch import materialize_version, prepare_dagster_home

    with pytest.MonkeyPatch.context() as mp:
        home.apply(mp)
        env = resolve_environment(None, None)
        prepare_dagster_home(env.dagster_home)
        store = env.store
        imported: set[str] = set()
        for version, (folder, label, params) in versions.items():
            if label not in imported:
                import_input_dir(store, folder, label)
                imported.add(label)
            store.create_version(version, label, params)
            outcome = materialize_version(env.instance(), store, version)
            assert outcome.success, outcome.errors
    return env


class StrictPage(HTMLParser):
    """Parses a page and fails on an end tag that closes anything but the open element; collects
    the images, the text of each section and the rows of each table."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.images: list[dict[str, str]] = []
        self.tables: list[list[list[str]]] = []
        self.sections: dict[str, str] = {}
        self.list_items: list[str] = []
        self._section: str | None = None
        self._cell: list[str] | None = None
        self._li: list[str] | None = None
        self.doctype = False

    def handle_decl(self, decl):
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        attrs_d = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(attrs_d)
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag == "section":
            self._section = attrs_d.get("id", "")
            self.sections[self._section] = ""
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "li":
            self._li = []

    def handle_endtag(self, tag):
        assert tag not in VOID, f"end tag for void element <{tag}>"
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]} (open: {self.stack})"
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "li" and self._li is not None:
            self.list_items.append("".join(self._li).strip())
            self._li = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._li is not None:
            self._li.append(data)
        if self._section is not None:
            self.sections[self._section] += data


def parse_page(path: Path) -> StrictPage:
    page = StrictPage()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.doctype, "no <!DOCTYPE html>"
    assert page.stack == [], f"elements left open: {page.stack}"
    return page


def embedded_png(image: dict[str, str]) -> bytes:
    prefix = "data:image/png;base64,"
    assert image["src"].startswith(prefix), image["src"][:40]
    return base64.b64decode(image["src"][len(prefix):], validate=True)


def assert_non_trivial_png(path: Path, min_width: int = 400, min_height: int = 200) -> None:
    """A PNG that decodes, is at least ``min_width`` x ``min_height`` and is not one colour."""
    from matplotlib.image import imread

    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] >= min_height and pixels.shape[1] >= min_width, pixels.shape
    colours = np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)
    assert len(colours) > 20, f"{path.name}: only {len(colours)} colours"
    # more than a frame: at least 2 % of the pixels are not white
    assert (pixels[..., :3].min(axis=2) < 0.95).mean() > 0.02, f"{path.name} is nearly blank"
