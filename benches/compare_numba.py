#!/usr/bin/env python3
"""kernjit next to Numba on the same kernels and the same inputs.

Usage (from the repository root; not run in CI):

    pip install numba                       # once
    cargo build --release
    python3 benches/compare_numba.py [PATH ...] [--threads 1,2] [--time SECONDS]
                                      [--filter TEXT] [--kernjit-json FILE] [--json]

PATHs are .kern files or directories (default: kernels/). For every
`# bench: KERNEL(ARGS)` line the script

  1. runs `target/release/kernjit bench PATHS --json --threads ...` (or reads
     the rows of an earlier run from --kernjit-json), and
  2. execs the same .kern source as Python with Numba's `njit` applied to
     every function (serial: `njit`, threads > 1: `njit(parallel=True)` with
     `numba.set_num_threads(n)`), builds the same arguments (the `kernjit run`
     syntax and splitmix64 stream of tests/cpython/run_kern.py, so the arrays
     are bit-identical), and measures
       - compile: `dispatcher.compile(signature)` of a fresh dispatcher (the
         callees it calls compile inside it, as kernjit's compile includes
         them); Numba's import and first-use warm-up are excluded;
       - steady state: the median of repeated calls over about --time seconds.

It prints one row per bench line and thread count: compile and call times of
both, and the ratios kernjit / Numba (below 1: kernjit is faster). --json
prints the rows as JSON lines instead.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cpython"))

import run_kern  # noqa: E402  (argument syntax and generators, shared)


def kern_files(paths):
    files = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".kern")))
        else:
            files.append(path)
    return files


def bench_lines(source):
    """(line, kernel, [arg texts]) of every `# bench:` comment."""
    lines = []
    for lineno, line in enumerate(source.splitlines(), 1):
        text = line.strip()
        if not text.startswith("#"):
            continue
        body = text[1:].strip()
        if not body.startswith("bench:"):
            continue
        call = body[len("bench:"):].strip()
        name, _, rest = call.partition("(")
        if not rest.endswith(")"):
            raise run_kern.KernError("line %d: malformed bench line %r" % (lineno, call))
        lines.append((lineno, call, name.strip(), run_kern.split_top_level(rest[:-1])))
    return lines


def load_numba(path, parallel):
    """The .kern file's functions as fresh Numba dispatchers (every function
    jitted, so kernels calling kernels call compiled code)."""
    import math
    import types

    import numba
    import numpy as np

    with open(path, encoding="utf-8") as f:
        source = f.read()
    env = {"__name__": "kern_numba", "__file__": path, "prange": numba.prange, "np": np, "math": math}
    for name in run_kern.MATH_NAMES:
        env[name] = getattr(math, name)
    for name, dtype in run_kern.DTYPES.items():
        if name != "bool":
            env[name] = dtype
    import __future__

    flags = __future__.annotations.compiler_flag  # kern annotations are not Python expressions
    exec(compile(source, path, "exec", flags=flags, dont_inherit=True), env)
    env["prange"] = numba.prange
    functions = [name for name, value in env.items() if isinstance(value, types.FunctionType)]
    for name in functions:
        env[name] = numba.njit(parallel=parallel, cache=False)(env[name])
    return env


def measure_numba(path, kernel, arg_texts, threads, seconds, seed):
    import numba

    parallel = threads > 1
    if parallel:
        numba.set_num_threads(threads)
    env = load_numba(path, parallel)
    dispatcher = env[kernel]
    rng = run_kern.SplitMix64(seed)
    args = [run_kern.make_arg(text, rng, os.path.dirname(path) or ".") for text in arg_texts]
    signature = tuple(numba.typeof(arg) for arg in args)
    started = time.perf_counter()
    dispatcher.compile(signature)
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    dispatcher(*args)
    first_call_s = time.perf_counter() - started
    calls = []
    deadline = time.perf_counter() + seconds
    while len(calls) < 3 or (time.perf_counter() < deadline and len(calls) < 100000):
        started = time.perf_counter()
        dispatcher(*args)
        calls.append(time.perf_counter() - started)
    return {"compile_ms": compile_s * 1e3, "first_call_ms": first_call_s * 1e3,
            "median_ms": statistics.median(calls) * 1e3, "reps": len(calls)}


def warm_up_numba():
    """Pay Numba's one-time costs (LLVM initialisation, the parallel
    backend) before anything is timed, as kernjit's compile times exclude
    process start-up."""
    import warnings

    import numba
    import numpy as np

    warnings.simplefilter("ignore", numba.NumbaPerformanceWarning)

    def axpy(a, x, y):
        for i in numba.prange(x.shape[0]):
            y[i] += a * x[i]

    x = np.ones(1000)
    numba.njit(axpy)(2.0, x, x.copy())
    numba.njit(parallel=True)(axpy)(2.0, x, x.copy())


def kernjit_rows(args, files):
    if args.kernjit_json:
        with open(args.kernjit_json, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    binary = os.path.join(ROOT, "target", "release", "kernjit")
    if not os.path.exists(binary):
        sys.exit("compare_numba: build kernjit first: cargo build --release")
    command = [binary, "bench", *files, "--json", "--threads", ",".join(map(str, args.threads)),
               "--time", str(args.time), "--seed", str(args.seed)]
    if args.filter:
        command += ["--filter", args.filter]
    print("$ " + " ".join(command), file=sys.stderr)
    output = subprocess.run(command, check=False, capture_output=True, text=True)
    if output.returncode != 0:
        sys.stderr.write(output.stderr)
    return [json.loads(line) for line in output.stdout.splitlines() if line.strip()]


def short(ms):
    if ms >= 1000:
        return "%.2f s" % (ms / 1e3)
    if ms >= 100:
        return "%.0f ms" % ms
    if ms >= 10:
        return "%.1f ms" % ms
    if ms >= 1:
        return "%.2f ms" % ms
    return "%.0f µs" % (ms * 1e3)


def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numba
    import numpy

    return "%s, %d cores; Python %s, Numba %s, NumPy %s" % (
        model, os.cpu_count() or 0, platform.python_version(), numba.__version__, numpy.__version__)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=[os.path.join(ROOT, "kernels")])
    parser.add_argument("--threads", default="1,2", type=lambda t: [int(x) for x in t.split(",")])
    parser.add_argument("--time", type=float, default=1.0, help="seconds of steady state per row")
    parser.add_argument("--filter", help="only bench lines whose call contains this text")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--kernjit-json", help="rows of an earlier `kernjit bench --json` run")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of the table")
    args = parser.parse_args()

    files = kern_files(args.paths)
    warm_up_numba()
    ours = {(row["line"].rsplit(":", 1)[1], row["call"], row["threads"]): row
            for row in kernjit_rows(args, files) if row["engine"] == "jit"}
    rows = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        for lineno, call, kernel, arg_texts in bench_lines(source):
            if args.filter and args.filter not in call:
                continue
            for threads in args.threads:
                row = {"line": "%s:%d" % (os.path.relpath(path), lineno), "kernel": kernel, "threads": threads}
                try:
                    row["numba"] = measure_numba(path, kernel, arg_texts, threads, args.time, args.seed)
                except Exception as error:  # report and go on, as kernjit bench does
                    row["numba_error"] = "%s: %s" % (type(error).__name__, str(error).splitlines()[0])
                row["kernjit"] = ours.get((str(lineno), call, threads))
                rows.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print("measured %s threads=%d" % (row["line"], threads), file=sys.stderr, flush=True)
    if args.json:
        return
    print("Machine: " + machine())
    print()
    print("| kernel | threads | compile kernjit | compile Numba | ratio | call kernjit | call Numba | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        ours_row, theirs = row.get("kernjit"), row.get("numba")
        if ours_row is None or theirs is None:
            why = row.get("numba_error", "no kernjit row")
            print("| %s | %d | | | | | | %s |" % (row["kernel"], row["threads"], why))
            continue
        print("| %s | %d | %s | %s | %.4f | %s | %s | %.2f |" % (
            row["kernel"], row["threads"],
            short(ours_row["compile_ms"]), short(theirs["compile_ms"]),
            ours_row["compile_ms"] / theirs["compile_ms"],
            short(ours_row["median_ms"]), short(theirs["median_ms"]),
            ours_row["median_ms"] / theirs["median_ms"]))


if __name__ == "__main__":
    main()
