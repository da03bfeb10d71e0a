"""Shared helpers of the end-to-end tests: a project home, ``dagster dev``, GraphQL, Chromium, PNGs.

Nothing here is a test: ``test_dagster_ui_e2e.py`` and ``test_tutorial_commands.py`` use it.
(Do not rename it ``gql.py``: that would shadow the ``gql`` package ``dagster_graphql`` imports.)

Needs ``requests`` and ``websockets`` (both in the venv through dagster / dagster-webserver)
and, for screenshots, Debian's ``chromium``. PNGs are checked with zlib + numpy (no Pillow).

Process hygiene: every server and browser is started in its own process group (session) with
SIGINT restored to its default (a background job of a non-interactive shell inherits an
*ignored* SIGINT, and ``dagster dev`` then ignores SIGINT and SIGTERM alike). Stopping sends
SIGINT to the group, waits a bounded time, then SIGKILLs whatever is left of the group and of
every descendant seen while it ran. Descendants are tracked as (pid, start time) so a reused
pid is never mistaken for ours.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plan_pipeline.orchestration.plan.partitions import PLAN_GROUPS
from plan_pipeline_tests.project_homes import HOME_VARS
from plan_pipeline_tests.project_homes import ProjectHome as StoreHome

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO_ROOT / "plan_pipeline" / "sample_data" / "sample_plan"
BIN_DIR = Path(sys.executable).parent
PYTHON = sys.executable
CHROMIUM = os.environ.get("PLAN_PIPELINE_CHROMIUM", "/usr/bin/chromium")
LOCATION = "plan_pipeline"
REPOSITORY = "__repository__"

# `python -c` prefix that restores SIGINT before exec'ing the real command.
SIGINT_RESTORING_EXEC = [
    PYTHON,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])",
]


class HarnessError(AssertionError):
    """A failed expectation of the harness (an AssertionError, so pytest shows it as a failure)."""


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.5, what: str = "condition",
               on_timeout: Callable[[], str] | None = None) -> Any:
    """Poll ``predicate`` until it returns a truthy value (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except HarnessError:
            raise
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            extra = ("\n" + on_timeout()) if on_timeout else ""
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}{detail}{extra}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------- processes
def _proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgid, start time in clock ticks) of a live pid, None if gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2]), int(fields[19])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def process_alive(pid: int, start_ticks: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[2] == start_ticks


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


@dataclass
class ManagedProcess:
    """A command started in its own session; knows every descendant it has been seen to have."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path = REPO_ROOT
    popen: subprocess.Popen | None = None
    seen: dict[int, int] = field(default_factory=dict)  # pid -> start ticks

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.popen = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            log.close()
        self.track()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def track(self) -> dict[int, int]:
        """Record the group and every descendant alive now; returns the alive ones."""
        if self.popen is None:
            return {}
        stats = {pid: st for pid in _all_pids() if (st := _proc_stat(pid)) is not None}
        family = {self.pid}
        changed = True
        while changed:
            changed = False
            for pid, (ppid, pgid, _) in stats.items():
                if pid not in family and (ppid in family or pgid == self.pid):
                    family.add(pid)
                    changed = True
        alive = {pid: stats[pid][2] for pid in family if pid in stats}
        self.seen.update(alive)
        return alive

    def survivors(self) -> dict[int, str]:
        """Seen processes still alive (pid -> command line)."""
        return {pid: _cmdline(pid) for pid, ticks in self.seen.items() if process_alive(pid, ticks)}

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"({self.log_path} does not exist)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 30.0) -> dict[int, str]:
        """SIGINT to the group, bounded wait, SIGKILL fallback; returns what had to be killed."""
        if self.popen is None:
            return {}
        self.track()
        killed: dict[int, str] = {}
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        # children may outlive the leader for a moment: give them the rest of the grace period
        with contextlib.suppress(HarnessError):
            wait_until(lambda: not self.survivors(), timeout=10, interval=0.2, what=f"{self.name} children to exit")
        leftovers = self.survivors()
        if leftovers:
            killed.update(leftovers)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            for pid, ticks in list(self.seen.items()):
                if process_alive(pid, ticks):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        with contextlib.suppress(HarnessError):
            wait_until(lambda: not self.survivors(), timeout=10, interval=0.2, what=f"{self.name} to die")
        return killed


# ------------------------------------------------------------------------------------- project home
@dataclass
class ProjectHome:
    """A temporary project home for processes started the way a user starts them (the CLI,
    ``dagster dev``, ``plan-pipeline serve``): ``project`` is the home folder and its plan store
    on the run's backend (``plan_pipeline_tests/project_homes.py``: the folder's
    ``plan_store.duckdb``, or a PostgreSQL database named by ``PLAN_STORE_URL``), plus
    ``dagster_home/`` with the project's dagster.yaml rendered for that store."""

    project: StoreHome
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. the configured legacy source

    @property
    def root(self) -> Path:
        return self.project.home

    @property
    def db_path(self) -> Path:
        return self.project.db_path

    @property
    def dagster_home(self) -> Path:
        return self.project.dagster_home

    @property
    def is_postgres(self) -> bool:
        return self.project.is_postgres

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DAGSTER_", "PLAN_PIPELINE_")) and k not in HOME_VARS}
        env.update(self.project.env, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
        env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
        env.update(self.extra_env)
        env.update(extra)
        return env

    def prepare(self) -> ProjectHome:
        from plan_pipeline.orchestration.plan.launch import prepare_dagster_home

        self.root.mkdir(parents=True, exist_ok=True)
        prepare_dagster_home(self.dagster_home, self.env())  # the pool block follows the store's backend
        return self

    def cli(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        """``python -m plan_pipeline.cli.main --home ROOT ARGS`` in a subprocess."""
        argv = [PYTHON, "-m", "plan_pipeline.cli.main", "--home", str(self.root), *args]
        result = subprocess.run(argv, cwd=REPO_ROOT, env=self.env(), capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise HarnessError(
                f"plan-pipeline {' '.join(args)} exited {result.returncode}\n"
                f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
            )
        return result

    def query_store(self, sql: str, params: Iterable[Any] = (), timeout: float = 60) -> list[tuple]:
        """A short read-only query of the plan store (``?`` placeholders on either backend); on
        DuckDB retried while another process holds the file."""
        if self.is_postgres:
            with self.project.store.connect(read_only=True) as con:
                return con.execute(sql, list(params)).fetchall()
        import duckdb

        def attempt():
            try:
                con = duckdb.connect(str(self.db_path), read_only=True)
            except duckdb.IOException as exc:
                if "lock" in str(exc).lower():
                    return None
                raise
            try:
                return ("ok", con.execute(sql, list(params)).fetchall())
            finally:
                con.close()

        return wait_until(attempt, timeout=timeout, interval=0.3, what=f"a read-only connection to {self.db_path}")[1]

    def row_checksum(self, alias: str) -> str:
        """SQL for an order-independent checksum of the rows of ``alias`` in a GROUP BY (DuckDB's
        ``hash`` of the row; PostgreSQL: md5 of the sorted md5s of the rows' text)."""
        if self.is_postgres:
            return f"md5(string_agg(md5({alias}::text), '' ORDER BY md5({alias}::text)))"
        return f"sum(hash({alias}))"


# ------------------------------------------------------------------------------------- dagster dev
class GraphQLError(HarnessError):
    pass


class DagsterDevServer:
    """``dagster dev -w workspace.yaml`` on 127.0.0.1:<free port> against a :class:`ProjectHome`."""

    def __init__(self, home: ProjectHome, log_path: Path, port: int | None = None):
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [*SIGINT_RESTORING_EXEC, str(BIN_DIR / "dagster"), "dev", "-w", "workspace.yaml",
                "-h", "127.0.0.1", "-p", str(self.port)]
        self.process = ManagedProcess("dagster dev", argv, log_path, env=home.env())

    # lifecycle
    def start(self, timeout: float = 240) -> DagsterDevServer:
        self.process.start()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        import requests

        def server_info():
            self._assert_running()
            response = requests.get(f"{self.url}/server_info", timeout=5)
            return response.status_code == 200

        wait_until(server_info, timeout, interval=0.5, what=f"{self.url}/server_info", on_timeout=self.diagnostics)

        def location_loaded():
            self._assert_running()
            data = self.graphql("""{ workspaceOrError { __typename ... on Workspace { locationEntries {
                name loadStatus locationOrLoadError { __typename ... on PythonError { message stack } } } } } }""")
            entries = {e["name"]: e for e in data["workspaceOrError"].get("locationEntries", [])}
            entry = entries.get(LOCATION)
            if entry is None or entry["loadStatus"] != "LOADED":
                return False
            loaded = entry["locationOrLoadError"] or {}
            if loaded.get("__typename") == "PythonError":
                raise HarnessError(f"code location {LOCATION} failed to load: {loaded['message']}\n"
                                   + "".join(loaded.get("stack") or []) + self.diagnostics())
            return loaded.get("__typename") == "RepositoryLocation"

        wait_until(location_loaded, timeout, interval=1.0, what=f"code location {LOCATION} to load",
                   on_timeout=self.diagnostics)
        self.process.track()

    def _assert_running(self) -> None:
        if not self.process.running():
            raise HarnessError(f"dagster dev exited with {self.process.popen.returncode}" + self.diagnostics())

    def stop(self, grace: float = 30.0) -> dict[int, str]:
        return self.process.stop(grace)

    def diagnostics(self, lines: int = 80) -> str:
        return f"\n--- dagster dev log tail ({self.process.log_path}) ---\n{self.process.log_tail(lines)}"

    # GraphQL
    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        import requests

        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=timeout)
        if response.status_code != 200:
            raise GraphQLError(f"GraphQL HTTP {response.status_code}: {response.text[:2000]}")
        payload = response.json()
        if payload.get("errors"):
            raise GraphQLError(f"GraphQL errors: {json.dumps(payload['errors'])[:3000]}")
        return payload["data"]

    def repository_selector(self) -> dict[str, str]:
        return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}

    def group_asset_nodes(self, fields: str, groups: Iterable[str] = PLAN_GROUPS) -> list[dict]:
        """``assetNodes { <fields> }`` of every asset in ``groups`` (default: every plan asset)."""
        return [node for group in groups for node in self.graphql(
            f"""query Group($group: AssetGroupSelector!) {{ assetNodes(group: $group) {{ {fields} }} }}""",
            {"group": {"groupName": group, **self.repository_selector()}})["assetNodes"]]


# ------------------------------------------------------------------------------------- Chromium / CDP
class Browser:
    """Headless Chromium driven over the DevTools protocol (one page, websockets' sync client)."""

    def __init__(self, profile_dir: Path, log_path: Path, width: int = 1600, height: int = 1000):
        self.width, self.height = width, height
        self.port = free_port()
        self.binary = which_chromium() or CHROMIUM
        argv = [*SIGINT_RESTORING_EXEC, self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--mute-audio", f"--window-size={width},{height}",
                f"--user-data-dir={profile_dir}", "--remote-debugging-address=127.0.0.1",
                f"--remote-debugging-port={self.port}", "about:blank"]
        self.process = ManagedProcess("chromium", argv, log_path)
        self._ws = None
        self._ws_scope = contextlib.ExitStack()  # websockets wants its connection used as a context manager
        self._next_id = 0

    def start(self, timeout: float = 60) -> Browser:
        import requests
        from websockets.sync.client import connect

        if not Path(self.binary).exists():
            raise HarnessError(f"{self.binary} is missing (Debian: apt-get install chromium; .ci/run installs it)")
        self.process.start()

        def page_target():
            if not self.process.running():
                raise HarnessError(f"chromium exited {self.process.popen.returncode}:\n{self.process.log_tail()}")
            targets = requests.get(f"http://127.0.0.1:{self.port}/json/list", timeout=5).json()
            pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
            return pages[0] if pages else None

        target = wait_until(page_target, timeout, what="chromium's DevTools endpoint")
        self._ws = self._ws_scope.enter_context(connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30))
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.set_viewport(self.width, self.height)
        self.process.track()
        return self

    def set_viewport(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def stop(self) -> dict[int, str]:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws_scope.close()
            self._ws = None
        return self.process.stop(grace=15)

    def send(self, method: str, params: dict | None = None, timeout: float = 60) -> dict:
        self._next_id += 1
        message_id = self._next_id
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessError(f"CDP {method} got no answer in {timeout:.0f}s")
            message = json.loads(self._ws.recv(timeout=remaining))
            if message.get("id") == message_id:
                if "error" in message:
                    raise HarnessError(f"CDP {method} failed: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if result.get("exceptionDetails"):
            raise HarnessError(f"JS error in {expression[:80]!r}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        wait_until(lambda: self.evaluate("document.readyState") == "complete", 60, what=f"{url} to load")

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    COMMUNITY_MODAL = "Join the Dagster community"

    def dismiss_popups(self) -> bool:
        """Click "Skip" on Dagster's first-visit community modal if it is open; True if clicked."""
        return bool(self.evaluate(f"""(() => {{
            if (!(document.body && document.body.innerText.includes({json.dumps(self.COMMUNITY_MODAL)}))) return false;
            const skip = [...document.querySelectorAll('button')].find(b => (b.innerText || '').trim() === 'Skip');
            if (skip) {{ skip.click(); return true; }}
            return false;
        }})()"""))

    def skip_first_visit_modal(self, appear_timeout: float = 15) -> bool:
        """The community modal opens about a second after the first page of a fresh instance
        renders; wait for it a bounded time, click "Skip", and wait until it is gone.
        Returns whether it was shown (it is not on an instance where it was dismissed before)."""
        shown = False
        with contextlib.suppress(HarnessError):
            shown = bool(wait_until(lambda: self.COMMUNITY_MODAL in self.text(), appear_timeout, interval=0.3,
                                    what="the first-visit modal"))
        if shown:
            wait_until(lambda: self.dismiss_popups() or self.COMMUNITY_MODAL not in self.text(), 15,
                       what="the Skip button of the first-visit modal")
            wait_until(lambda: self.COMMUNITY_MODAL not in self.text(), 15, what="the first-visit modal to close")
        return shown

    def wait_for_page(self, texts: Iterable[str], timeout: float = 90, absent: Iterable[str] = (),
                      spinners_allowed: bool = False) -> str:
        """Dismiss pop-ups, then wait until every text is on the page, no ``absent`` text is, no dialog
        covers it and no spinner is spinning (unless ``spinners_allowed``: the launchpad keeps an
        SVG spinner in its config editor's toolbar); returns the page text."""
        texts, absent = list(texts), [*absent, self.COMMUNITY_MODAL]

        def ready():
            self.dismiss_popups()
            state = self.evaluate("""(() => ({
                text: document.body ? document.body.innerText : '',
                dialogs: [...document.querySelectorAll('[role=dialog], [class*="dialog" i]')]
                    .filter(e => e.offsetParent !== null).length,
                spinners: [...document.querySelectorAll('[class*="spinner" i], [role=progressbar]')]
                    .filter(e => e.offsetParent !== null).length,
            }))()""")
            text = state["text"]
            if state["dialogs"] or (state["spinners"] and not spinners_allowed):
                return None
            if all(t in text for t in texts) and not any(a in text for a in absent):
                return text
            return None

        def why() -> str:
            state = self.evaluate("""(() => ({
                dialogs: [...document.querySelectorAll('[role=dialog], [class*="dialog" i]')]
                    .filter(e => e.offsetParent !== null).map(e => e.className).slice(0, 5),
                spinners: [...document.querySelectorAll('[class*="spinner" i], [role=progressbar]')]
                    .filter(e => e.offsetParent !== null).map(e => e.className).slice(0, 5),
            }))()""")
            text = self.text()
            missing = [t for t in texts if t not in text]
            present = [a for a in absent if a in text]
            return (f"missing {missing}, unwanted {present}, dialogs {state['dialogs']}, spinners "
                    f"{state['spinners']}; page {self.evaluate('location.href')} text starts:\n{text[:1500]}")

        return wait_until(ready, timeout, interval=0.5, what=f"page showing {texts}", on_timeout=why)

    def click_text(self, text: str, selector: str = "button, a, [role=button], [role=tab]") -> bool:
        return bool(self.evaluate(f"""(() => {{
            const hit = [...document.querySelectorAll({json.dumps(selector)})]
                .find(e => (e.innerText || '').trim() === {json.dumps(text)});
            if (hit) {{ hit.click(); return true; }}
            return false;
        }})()"""))

    def drag(self, x0: float, y0: float, x1: float, y1: float, steps: int = 8) -> None:
        """Press the left mouse button at (x0, y0), move to (x1, y1), release (e.g. a split-pane divider)."""
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x0, "y": y0})
        self.send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": x0, "y": y0, "button": "left",
                                               "buttons": 1, "clickCount": 1})
        for i in range(1, steps + 1):
            x, y = x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps
            self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "button": "left", "buttons": 1})
        self.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x1, "y": y1, "button": "left",
                                               "buttons": 0, "clickCount": 1})

    def rect(self, selector: str) -> dict | None:
        """Bounding box (x, y, width, height) of the first visible element matching ``selector``."""
        return self.evaluate(f"""(() => {{
            const e = [...document.querySelectorAll({json.dumps(selector)})].find(e => e.offsetParent !== null);
            if (!e) return null;
            const r = e.getBoundingClientRect();
            return {{x: r.x, y: r.y, width: r.width, height: r.height}};
        }})()""")

    def screenshot(self, path: Path, height: int | None = None) -> Path:
        """PNG of the viewport (its top ``height`` pixels if given)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": False}
        if height:
            params["clip"] = {"x": 0, "y": 0, "width": self.width, "height": min(height, self.height), "scale": 1}
        data = self.send("Page.captureScreenshot", params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


# ------------------------------------------------------------------------------------- PNG
@dataclass
class PngStats:
    width: int
    height: int
    size_bytes: int
    distinct_colors: int  # among sampled pixels
    dominant_share: float  # share of sampled pixels having the most common color
    dark_share: float  # share of sampled pixels that are dark (text, lines)


def png_stats(path: Path, sample_rows: int = 120) -> PngStats:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) with zlib and numpy."""
    import numpy as np

    raw = Path(path).read_bytes()
    if raw[:8] != b"\x89PNG\r\n\x1a\n":
        raise HarnessError(f"{path} is not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(raw):
        length, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        chunk = raw[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        pos += 12 + length
    width, height, depth, color_type, _, _, interlace = header
    if depth != 8 or color_type not in (2, 6) or interlace:
        raise HarnessError(f"{path}: unsupported PNG (depth {depth}, color type {color_type}, interlace {interlace})")
    bpp = 3 if color_type == 2 else 4
    stride = width * bpp
    data = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(height, stride + 1)
    filters = data[:, 0].astype(np.int16)
    filtered = data[:, 1:].astype(np.int16).reshape(height, width, bpp)
    # Undo the per-row filters along anti-diagonals: pixel (y, x) needs (y, x-1), (y-1, x) and
    # (y-1, x-1), all on earlier diagonals, so each diagonal is one vectorised step.
    recon = np.zeros((height + 1, width + 1, bpp), dtype=np.int16)  # row 0 / column 0 = zero padding
    for d in range(height + width - 1):
        ys = np.arange(max(0, d - width + 1), min(height, d + 1))
        xs = d - ys
        left, up, upleft = recon[ys + 1, xs], recon[ys, xs + 1], recon[ys, xs]
        kind = filters[ys][:, None]
        p = left + up - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        pred = np.select([kind == 1, kind == 2, kind == 3, kind == 4],
                         [left, up, (left + up) // 2, paeth], default=0)
        recon[ys + 1, xs + 1] = (filtered[ys, xs] + pred) % 256
    image = recon[1:, 1:]
    pixels = image[:, :, :3].astype(np.uint32)
    step = max(1, height // sample_rows)
    sampled = pixels[::step].reshape(-1, 3)
    packed = (sampled[:, 0] << 16) | (sampled[:, 1] << 8) | sampled[:, 2]
    _, counts = np.unique(packed, return_counts=True)
    dark = (sampled.sum(axis=1) < 3 * 110).mean()
    return PngStats(width, height, len(raw), len(counts), float(counts.max() / len(packed)), float(dark))


def assert_real_screenshot(path: Path, min_bytes: int = 20_000, min_colors: int = 24) -> PngStats:
    stats = png_stats(path)
    problems = []
    if stats.size_bytes < min_bytes:
        problems.append(f"only {stats.size_bytes} bytes")
    if stats.distinct_colors < min_colors:
        problems.append(f"only {stats.distinct_colors} distinct colors")
    if stats.dominant_share > 0.97:
        problems.append(f"{stats.dominant_share:.1%} of the pixels have one color")
    if stats.dark_share < 0.002:
        problems.append(f"almost no dark pixels ({stats.dark_share:.2%}): no text?")
    if problems:
        raise HarnessError(f"{path} looks blank: {', '.join(problems)} ({stats})")
    return stats


def which_chromium() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
