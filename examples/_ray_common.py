"""Driver-side helpers shared by the Ray examples (ray_night.py,
ray_contrast.py, ray_orbits.py): command-line flags, starting or joining a
Ray cluster, waiting for tasks behind a progress bar, and the summary.

The task functions live in each example's ``__main__`` and ship by value
with the kernels they call (a worker needs only NumPy and kernjit
installed, not this directory). The one helper they call here,
`timed_call`, ships by value too: `ray_session` registers this module with
Ray's cloudpickle, so workers never import it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

import numpy as np

KERNELS = Path(__file__).resolve().parent.parent / "kernels"

try:
    from tqdm import tqdm as _tqdm
except ImportError:  # a plain-text progress line instead
    _tqdm = None


# The compile phases of a kernel's stats() (seconds each).
PHASES = ("parse", "infer", "lower", "cranelift", "finalize")


def timed_call(kernel: Any, *args: Any) -> "tuple[Any, Dict[str, Any]]":
    """Calls `kernel(*args)` in a task; returns its result and a report:
    the worker's pid, node and host, the kernel's time, and on the call that
    compiled the kernel in this process (its first) that call's time and
    the compile part of it. Runs on the workers."""
    before = kernel.stats()
    start = time.perf_counter()
    result = kernel(*args)
    kernel_s = time.perf_counter() - start
    first_call_s = compile_s = None
    if before["misses"] == 0:  # this call compiled it: the first in this process
        after = kernel.stats()
        first_call_s = kernel_s
        compile_s = sum(after[p] - before[p] for p in PHASES)
    ray = sys.modules.get("ray")
    node = ray.get_runtime_context().get_node_id() if ray and ray.is_initialized() else "local"
    report = {
        "pid": os.getpid(),
        "node": node,
        "host": socket.gethostname(),
        "first_call_s": first_call_s,
        "compile_s": compile_s,
        "kernel_s": kernel_s,
    }
    return result, report


def make_parser(doc: str) -> argparse.ArgumentParser:
    """The example's parser; its --help shows the whole docstring."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=None,
        help="join an existing Ray cluster (host:port, 'auto' or ray://...); "
        "default: start a local one",
    )
    parser.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="CPUs of the local Ray started without --address (default: all; 2 with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="a small, fast run (the smoke test's)")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the synthetic data")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def apply_quick(args: argparse.Namespace, quick: Dict[str, Any], parser: argparse.ArgumentParser) -> None:
    """With --quick, every size flag the user left at its default takes
    the quick value."""
    if not args.quick:
        return
    for name, value in quick.items():
        if getattr(args, name) == parser.get_default(name):
            setattr(args, name, value)
    if args.num_cpus is None:
        args.num_cpus = 2


@contextlib.contextmanager
def ray_session(args: argparse.Namespace) -> Iterator[Any]:
    """ray.init (a new local Ray, or --address), ray.shutdown on the way
    out whatever happens. Yields the ray module."""
    import ray

    # Tasks call `timed_call`: ship this module by value, as the examples'
    # __main__ is (workers cannot import it).
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    start = time.perf_counter()
    if args.address:
        ray.init(address=args.address, logging_level="WARNING")
        where = f"joined the cluster at {args.address}"
    else:
        # "local": a new instance even if another one runs on this machine
        ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, logging_level="WARNING")
        where = "started a local Ray"
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = ray.cluster_resources().get("CPU", 0)
        print(
            f"ray: {where} in {time.perf_counter() - start:.1f} s: "
            f"{len(nodes)} node(s), {cpus:g} CPUs"
        )
        yield ray
    finally:
        ray.shutdown()


def wait_all(ray: Any, refs: Sequence[Any], desc: str, unit: str, sizes: Sequence[int], progress: bool) -> List[Any]:
    """ray.get of every ref, in order, behind a progress bar that advances
    as tasks finish (by their item counts `sizes`)."""
    index = {ref: i for i, ref in enumerate(refs)}
    results: List[Any] = [None] * len(refs)
    pending = list(refs)
    total = int(sum(sizes))
    bar = None
    if progress and _tqdm is not None:
        bar = _tqdm(total=total, desc=desc, unit=unit, unit_scale=total >= 10000, file=sys.stderr, dynamic_ncols=True)
    done_items = 0
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index[ref]
                results[i] = ray.get(ref)
                done_items += sizes[i]
                if bar is not None:
                    bar.update(sizes[i])
                elif progress:
                    print(f"\r{desc}: {done_items}/{total} {unit}", end="", file=sys.stderr, flush=True)
    finally:
        if bar is not None:
            bar.close()
        elif progress:
            print(file=sys.stderr)
    return results


def worker_info(report: Dict[str, Any]) -> str:
    return f"{report['node'][:8]} pid {report['pid']}"


def print_workers(reports: Sequence[Dict[str, Any]]) -> None:
    """One line per worker process: its tasks, items, the first call of the
    kernel there (compile + run) and the compile part of it, time in its
    tasks and in the kernel."""
    workers: Dict[Any, Dict[str, Any]] = {}
    for r in reports:
        key = (r["node"], r["pid"])
        w = workers.setdefault(
            key,
            {"host": r["host"], "tasks": 0, "items": 0, "busy": 0.0, "kernel": 0.0, "first": None, "compile": None},
        )
        w["tasks"] += 1
        w["items"] += r["items"]
        w["busy"] += r["task_s"]
        w["kernel"] += r["kernel_s"]
        if r["first_call_s"] is not None:
            w["first"] = r["first_call_s"]
            w["compile"] = r["compile_s"]
    print("per worker (first call = the call that compiled the kernel in that process, compile + run):")
    print(
        f"  {'node':<10} {'host':<16} {'pid':>8} {'tasks':>6} {'items':>7} "
        f"{'first call':>11} {'compile':>9} {'in tasks':>9} {'in kernel':>9}"
    )
    firsts = []
    for (node, pid), w in sorted(workers.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        first = "-" if w["first"] is None else ms(w["first"])
        comp = "-" if w["compile"] is None else ms(w["compile"])
        if w["first"] is not None:
            firsts.append(w["first"])
        print(
            f"  {node[:10]:<10} {w['host'][:16]:<16} {pid:>8} {w['tasks']:>6} {w['items']:>7} "
            f"{first:>11} {comp:>9} {ms(w['busy']):>9} {ms(w['kernel']):>9}"
        )
    nodes = len({node for node, _ in workers})
    if firsts:
        print(
            f"  {len(workers)} worker(s) on {nodes} node(s); first call median {ms(float(np.median(firsts)))}, "
            f"max {ms(max(firsts))}"
        )


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def rate(count: float, seconds: float, unit: str) -> str:
    r = count / seconds
    for threshold, scale, prefix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if r >= threshold:
            return f"{r / scale:.2f} {prefix} {unit}/s"
    return f"{r:.1f} {unit}/s"


def print_timing(what: str, count: int, unit: str, local_s: float, ray_s: float, detail: str = "") -> None:
    print(f"throughput, {count:,} {unit}:")
    print(f"  local, 1 process : {local_s:8.3f} s  {rate(count, local_s, unit):>24}")
    print(
        f"  ray              : {ray_s:8.3f} s  {rate(count, ray_s, unit):>24}   "
        f"({local_s / ray_s:.2f}x local){detail}"
    )


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal dtype, shape and every byte (so NaNs and -0.0 count too)."""
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def threads_note() -> str:
    import kernjit

    return f"{kernjit.get_num_threads()} thread(s) for prange"


def local_cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
