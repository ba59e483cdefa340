"""Real Ray clusters for tests: a local ``ray.init`` and a two-node
``ray.cluster_utils.Cluster`` (two raylets on this machine), each shut down
on exit, even when the test fails, with a check that none of the processes
Ray started outlives it.

Use from a test module (``import ray_fixtures`` works from python/tests)::

    ray = ray_fixtures.require_ray()          # skip (or fail in CI) without Ray

    @pytest.fixture(scope="class")
    def local():
        with ray_fixtures.local_ray(num_cpus=2) as address:
            yield address

    @pytest.fixture(scope="class")
    def two_nodes():
        with ray_fixtures.two_node_cluster() as cluster:
            yield cluster                      # .address, .node_ids

Only one cluster may be connected per process at a time (Ray allows one
``ray.init``): give each fixture its own test class (class scope), so that
the first is down before the next starts. ``pin(node_id)`` gives the
options that run a task or actor on one node; ``run_driver`` runs a driver
script in a fresh interpreter connected to a fixture's cluster by address
(as a user's ``python script.py`` would: its ``__main__`` is not
importable by workers).

Ray 2.60 turns token authentication on (``RAY_AUTH_MODE``): ``ray.init``
sets ``RAY_AUTH_MODE=token`` in this process's environment, and drivers
started here inherit it, which is what connecting by address needs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set, Tuple

import pytest

#: How long processes may take to exit after Ray's shutdown (about 1.5 s
#: on an idle machine).
STRAY_WAIT = 30.0


def require_ray() -> Any:
    """``import ray``; without it, skip the calling module with the reason,
    unless ``KERNJIT_REQUIRE_RAY=1`` (CI), where it is a failure."""
    try:
        import ray
    except ImportError as error:
        reason = f"Ray is not installed ({error}); pip install 'ray==2.60.0' to run these tests"
        if os.environ.get("KERNJIT_REQUIRE_RAY", "").strip() not in ("", "0"):
            pytest.fail(f"KERNJIT_REQUIRE_RAY is set but {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
    return ray


# ---- processes ----------------------------------------------------------------


def _stat(pid: int) -> Optional[Tuple[str, int, int]]:
    """A process's state letter, parent and start time (None if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: Optional[int] = None) -> List[int]:
    """Every process below `pid` (default: this one), zombies included
    (empty where there is no /proc)."""
    if not os.path.isdir("/proc"):
        return []
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                children.setdefault(stat[1], []).append(int(entry))
    found: List[int] = []
    todo = [os.getpid() if pid is None else pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _identify(pids: Iterable[int]) -> Set[Tuple[int, int]]:
    """(pid, start time) of each: a pid alone may be reused by another process."""
    found = set()
    for pid in pids:
        stat = _stat(pid)
        if stat is not None:
            found.add((pid, stat[2]))
    return found


def _alive(process: Tuple[int, int]) -> bool:
    stat = _stat(process[0])
    return stat is not None and stat[2] == process[1] and stat[0] not in ("Z", "X")


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            text = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        text = "(gone)"
    return f"{pid} {text[:120]}"


def wait_for_exit(processes: Iterable[Tuple[int, int]], timeout: float = STRAY_WAIT) -> List[int]:
    """Waits (bounded) until none of `processes` (pid, start time) runs;
    kills those still running then (they are ours: they were below this
    process) and returns their pids."""
    deadline = time.monotonic() + timeout
    left = [process for process in processes if _alive(process)]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [process for process in left if _alive(process)]
    for pid, _ in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):  # reap it if it is our child
            os.waitpid(pid, os.WNOHANG)
    return [pid for pid, _ in left]


class _Strays:
    """The processes a cluster started below this one: noted while it runs
    (once a raylet is down, its orphans are no longer below us), checked
    after the shutdown."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.before = _identify(descendants())
        self.started: Set[Tuple[int, int]] = set()

    def note(self) -> None:
        self.started |= _identify(descendants()) - self.before

    def check(self) -> None:
        self.note()
        stray = wait_for_exit(sorted(self.started))
        if stray:
            raise AssertionError(
                f"{self.what}: {len(stray)} process(es) outlived the shutdown (killed now):\n"
                + "\n".join(_describe(pid) for pid in stray)
            )


# ---- clusters -----------------------------------------------------------------


@contextlib.contextmanager
def local_ray(num_cpus: int = 2, **init_args: Any) -> Iterator[str]:
    """``ray.init(num_cpus=...)`` on this machine; yields the cluster's
    address (for drivers connecting with ``ray.init(address=...)``)."""
    ray = require_ray()
    if ray.is_initialized():
        ray.shutdown()
    strays = _Strays("local Ray")
    try:
        # address="local": a new instance, even where `ray start` left its
        # address in /tmp/ray (ray.init() would connect to that one).
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, **init_args)
        yield ray.get_runtime_context().gcs_address
    finally:
        strays.note()
        ray.shutdown()
        strays.check()


@dataclass
class TwoNodes:
    """A running two-node cluster: its address and its nodes' ids."""

    address: str
    node_ids: List[str] = field(default_factory=list)


@contextlib.contextmanager
def two_node_cluster(num_cpus: int = 1) -> Iterator[TwoNodes]:
    """Two raylets on this machine (``ray.cluster_utils.Cluster``, each with
    `num_cpus`), this process connected as a driver."""
    ray = require_ray()
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    strays = _Strays("two-node Ray cluster")
    cluster = None
    try:
        cluster = Cluster()
        cluster.add_node(num_cpus=num_cpus)
        cluster.add_node(num_cpus=num_cpus)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        node_ids = sorted(node["NodeID"] for node in ray.nodes() if node["Alive"])
        assert len(node_ids) == 2, f"expected two live nodes, got {node_ids}"
        yield TwoNodes(address=cluster.address, node_ids=node_ids)
    finally:
        strays.note()
        try:
            ray.shutdown()
        finally:
            if cluster is not None:
                cluster.shutdown()
            strays.check()


def pin(node_id: str) -> Dict[str, Any]:
    """``.options(**pin(node_id))``: run a task or actor on that node only."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)}


def run_driver(
    tmp_path: Any, source: str, address: str, *args: str, name: str = "driver.py", timeout: float = 240
) -> "subprocess.CompletedProcess[str]":
    """Writes `source` (dedented) to tmp_path/name and runs it as
    ``python name ADDRESS ARGS...`` in a fresh interpreter (cwd tmp_path);
    returns the CompletedProcess (text output)."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    environment = dict(os.environ)
    environment.pop("KERNJIT_DISABLE_JIT", None)
    return subprocess.run(
        [sys.executable, str(path), address, *args],
        cwd=str(tmp_path),
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
