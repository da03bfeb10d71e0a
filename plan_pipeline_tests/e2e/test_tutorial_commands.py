"""Every shell command of ``docs/tutorial.md`` runs, in order, as a new user would run it.

Convention (documented at the end of the tutorial): each fenced ```bash block is run with
``bash -eo pipefail`` in one fresh working directory shared by all blocks (so the default
project home ``./.plan_pipeline`` is a temporary one), with ``plan-pipeline`` resolved to this
venv's script and no ``PLAN_PIPELINE_*``/``DAGSTER_*`` variables inherited. HTML comments right
above a block steer it:

* ``<!-- not-run: install -->``: the install command; it must be the README's (``.ci/run`` runs it).
* ``<!-- not-run: ui -->``: starts or talks to the Dagster UI; the GraphQL operations it uses must
  be exercised by ``test_dagster_ui_e2e.py`` (which runs a real ``dagster dev``).
* ``<!-- exit: N -->``: the block must exit with status N (a refused operation).
* ``<!-- expect: TEXT -->``: the block's output must contain TEXT (one comment per text).
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from plan_pipeline_tests.e2e.harness import BIN_DIR, REPO_ROOT
from plan_pipeline_tests.project_homes import HOME_VARS

TUTORIAL = REPO_ROOT / "docs" / "tutorial.md"
E2E_TEST = Path(__file__).with_name("test_dagster_ui_e2e.py")
UI_ACTIONS = Path(__file__).with_name("ui_actions.py")  # the GraphQL calls the e2e test makes
README = REPO_ROOT / "README.md"
NOT_RUN_REASONS = {"install", "ui"}
BLOCK_TIMEOUT = 300

pytestmark = pytest.mark.both_backends


@dataclass
class Block:
    line: int
    code: str
    not_run: str | None = None
    exit_code: int = 0
    expect: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"docs/tutorial.md:{self.line}"


def parse_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            block = Block(line=start + 1, code="\n".join(body))
            j = start - 1
            while j >= 0 and (not lines[j].strip() or lines[j].strip().startswith("<!--")):
                match = re.fullmatch(r"<!--\s*([a-z-]+):\s*(.*?)\s*-->", lines[j].strip())
                if match:
                    key, value = match.groups()
                    if key == "not-run":
                        block.not_run = value.split()[0]
                    elif key == "exit":
                        block.exit_code = int(value)
                    elif key == "expect":
                        block.expect.insert(0, value)
                j -= 1
            blocks.append(block)
        i += 1
    return blocks


BLOCKS = parse_blocks(TUTORIAL.read_text()) if TUTORIAL.exists() else []


def test_tutorial_has_runnable_blocks():
    assert TUTORIAL.exists(), f"{TUTORIAL} is missing"
    assert sum(1 for b in BLOCKS if not b.not_run) >= 10, "the tutorial should be mostly runnable commands"
    for block in BLOCKS:
        assert block.not_run in (None, *NOT_RUN_REASONS), f"{block}: unknown not-run reason {block.not_run!r}"


def test_not_run_blocks_are_covered_elsewhere():
    readme = README.read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    e2e = E2E_TEST.read_text() + UI_ACTIONS.read_text()
    for block in BLOCKS:
        if block.not_run == "install":
            for command in (line.strip() for line in block.code.splitlines()):
                if command.startswith("python3 -m venv"):
                    assert command in readme, f"{block}: {command!r} is not the README's install command"
                    assert "python3 -m venv .venv && .venv/bin/pip install" in ci, ".ci/run no longer installs"
        elif block.not_run == "ui":
            operations = set(re.findall(r"\b(launchPartitionBackfill|launchRun|startSchedule|startSensor|"
                                        r"addDynamicPartition|runsOrError|runOrError|partitionBackfillOrError|launchRunReexecution)\b", block.code))
            missing = sorted(op for op in operations if op not in e2e)
            assert not missing, f"{block}: GraphQL operations not exercised by {E2E_TEST.name}: {missing}"
            commands = [line for line in block.code.splitlines() if line.strip() and not line.startswith("#")]
            assert commands, f"{block}: empty"


def test_referenced_screenshots_exist():
    text = TUTORIAL.read_text()
    images = re.findall(r"\]\((images/[^)]+\.png)\)", text)
    assert images, "the tutorial references no screenshots"
    missing = [i for i in images if not (TUTORIAL.parent / i).is_file()]
    assert not missing, f"screenshots missing (test_dagster_ui_e2e.py writes them): {missing}"


def tutorial_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DAGSTER_", "PLAN_PIPELINE_")) and k not in HOME_VARS}
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(workdir)  # nothing of the tester's home leaks in (e.g. ~/.dagster)
    env["PYTHONWARNINGS"] = "ignore"
    env["PLAN_PIPELINE_ACTOR"] = "tutorial"
    return env


def test_tutorial_commands_run_in_order(tmp_path, homes, request):
    """All runnable blocks, in document order, in one working directory (state carries over). On
    ``--store-backend=postgres`` the default home's store is a PostgreSQL database (``PLAN_STORE_URL``
    set as a deployment sets it)."""
    runnable = [b for b in BLOCKS if not b.not_run]
    assert runnable
    workdir = tmp_path / "tutorial"
    workdir.mkdir()
    home = homes.new(workdir / ".plan_pipeline", request.addfinalizer)  # the tutorial's default home
    env = home.subprocess_env(tutorial_env(workdir))
    transcript = []
    for block in runnable:
        result = subprocess.run(["bash", "-eo", "pipefail", "-c", block.code], cwd=workdir, env=env,
                                capture_output=True, text=True, timeout=BLOCK_TIMEOUT, stdin=subprocess.DEVNULL)
        output = result.stdout + result.stderr
        transcript.append(f"--- {block} (exit {result.returncode})\n{output[-1500:]}")
        assert result.returncode == block.exit_code, (
            f"{block} exited {result.returncode}, expected {block.exit_code}:\n{block.code}\n--- output ---\n"
            f"{output[-4000:]}")
        for text in block.expect:
            assert text in output, f"{block}: output lacks {text!r}:\n{output[-4000:]}"

    # what the tutorial promised, read back from the project home it created
    show = subprocess.run(["plan-pipeline", "version", "list"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=BLOCK_TIMEOUT)
    assert re.search(r"^base\s+approved\b", show.stdout, re.M), show.stdout + "\n".join(transcript[-3:])
    exported = workdir / "exports" / "base"
    assert (exported / "report.csv").is_file() and (exported / "manifest.json").is_file(), sorted(
        p.name for p in exported.glob("*"))
    home.check_no_duckdb_file()
