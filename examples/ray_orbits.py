#!/usr/bin/env python3
"""Orbit fits over a parameter grid, on Ray: a planet's Keplerian orbit from
noisy radial velocities, by brute force over (period, eccentricity, mean
anomaly at the reference epoch, argument of periastron), with the kernels of
kernels/kepler.kern.

    python examples/ray_orbits.py --quick                 # small, local Ray on 2 CPUs
    python examples/ray_orbits.py --periods 2000 --eccs 24
    python examples/ray_orbits.py --address HEAD:6379     # join a running cluster

Synthetic data: velocities of a known orbit (rv_model, which solves
Kepler's equation with kepler_newton) at irregular times, plus Gaussian
noise. At every grid point rv_chi2_grid solves Kepler's equation for every
observation time (kepler_newton, a kernel-to-kernel call), fits the
semi-amplitude K >= 0 and the systemic velocity gamma by weighted linear
least squares, and stores chi2, K and gamma. The best grid point must be
the injected orbit, within a grid step or two (exit code 2 if not).

Tasks are blocks of periods (the grid's outer axis); the reference is one
call over the whole grid in this process. The Ray results must be the same
bits (exit code 1 if not).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _ray_common as common  # noqa: E402  (driver-side helpers only)

import kernjit  # noqa: E402

kepler = kernjit.load(common.KERNELS / "kepler.kern")
rv_chi2_grid = kepler.rv_chi2_grid  # ships by value with the kernels it calls
rv_model = kepler.rv_model

TOL, MAXITER = 1e-12, 50

# The injected orbit.
TRUTH = {"period": 37.2, "ecc": 0.32, "omega": 1.1, "phase": 2.0, "K": 25.0, "gamma": -3.0}


# ----------------------------------------------------------------------------
# The task (runs on the workers; also the local reference)


def fit_block(t, rv, err, periods, eccs, omegas, phases, t0):
    """chi2, K and gamma (each (nperiods, neccs, nphases * nomegas)) for a
    block of periods, in arrays this task allocates; and a report (pid,
    node and, on the call that compiled the kernel in this process, that
    call's time)."""
    t_task = time.perf_counter()
    shape = (periods.shape[0], eccs.shape[0], phases.shape[0] * omegas.shape[0])
    chi2, kfit, gfit = np.empty(shape), np.empty(shape), np.empty(shape)
    _, report = common.timed_call(rv_chi2_grid, t, rv, err, periods, eccs, omegas, phases, t0, TOL, MAXITER, chi2, kfit, gfit)
    report["items"] = int(np.prod(shape))
    report["task_s"] = time.perf_counter() - t_task
    return (chi2, kfit, gfit), report


# ----------------------------------------------------------------------------


def synthetic_data(args, rng):
    """Observation times over args.baseline days (clumped in seasons),
    per-point errors, and the velocities of TRUTH plus noise."""
    t = np.sort(rng.uniform(0.0, args.baseline, args.ndata))
    err = rng.uniform(0.7, 1.3, args.ndata) * args.noise
    clean = np.empty(args.ndata)
    rv_model(t, TRUTH["period"], TRUTH["ecc"], TRUTH["omega"], TRUTH["phase"], 0.0, TRUTH["K"], TRUTH["gamma"], clean)
    return t, clean + err * rng.standard_normal(args.ndata), err


def grid(args):
    periods = np.geomspace(args.pmin, args.pmax, args.periods)
    eccs = np.linspace(0.0, args.emax, args.eccs)
    omegas = np.arange(args.omegas) * (2 * np.pi / args.omegas)
    phases = np.arange(args.phases) * (2 * np.pi / args.phases)
    return periods, eccs, omegas, phases


def angle_steps(a, b, step):
    """|a - b| on the circle, in grid steps."""
    d = (a - b + math.pi) % (2 * math.pi) - math.pi
    return abs(d) / step


def main(argv=None) -> int:
    parser = common.make_parser(__doc__)
    parser.add_argument("--periods", type=int, default=600, help="periods on the grid, log-spaced (default 600)")
    parser.add_argument("--eccs", type=int, default=16, help="eccentricities, 0 to --emax (default 16)")
    parser.add_argument("--omegas", type=int, default=16, help="arguments of periastron (default 16)")
    parser.add_argument("--phases", type=int, default=32, help="mean anomalies at t=0 (default 32)")
    parser.add_argument("--pmin", type=float, default=10.0, help="shortest period, days")
    parser.add_argument("--pmax", type=float, default=100.0, help="longest period, days")
    parser.add_argument("--emax", type=float, default=0.75)
    parser.add_argument("--ndata", type=int, default=60, help="RV measurements (default 60)")
    parser.add_argument("--baseline", type=float, default=400.0, help="days of observations")
    parser.add_argument("--noise", type=float, default=2.0, help="typical RV error, m/s")
    parser.add_argument("--block", type=int, default=20, help="periods per Ray task (default 20)")
    common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    common.apply_quick(
        args,
        {"periods": 48, "eccs": 8, "omegas": 8, "phases": 16, "pmin": 30.0, "pmax": 45.0, "ndata": 30, "block": 6},
        parser,
    )

    rng = np.random.default_rng(args.seed)
    t, rv, err = synthetic_data(args, rng)
    periods, eccs, omegas, phases = grid(args)
    npoints = periods.size * eccs.size * omegas.size * phases.size
    print(
        f"data: {args.ndata} velocities over {args.baseline:g} d, errors ~{args.noise:g} m/s; "
        f"grid: {periods.size} periods x {eccs.size} e x {phases.size} phases x {omegas.size} omegas "
        f"= {npoints:,} points ({periods.size * eccs.size * phases.size * args.ndata:,} Kepler solves)"
    )

    t1 = time.perf_counter()
    (chi2, kfit, gfit), _ = fit_block(t, rv, err, periods, eccs, omegas, phases, 0.0)
    local_s = time.perf_counter() - t1
    print(f"local: {local_s:.2f} s (one call over the grid, {common.threads_note()})")

    starts = list(range(0, periods.size, args.block))
    with common.ray_session(args) as ray:
        task = ray.remote(num_cpus=1)(fit_block)
        t1 = time.perf_counter()
        shared = [ray.put(a) for a in (t, rv, err)]
        grid_refs = [ray.put(a) for a in (eccs, omegas, phases)]
        refs = [task.remote(*shared, periods[s : s + args.block], *grid_refs, 0.0) for s in starts]
        per_period = eccs.size * omegas.size * phases.size
        sizes = [min(args.block, periods.size - s) * per_period for s in starts]
        results = common.wait_all(ray, refs, "chi2 grid", "pt", sizes, not args.no_progress)
        ray_s = time.perf_counter() - t1
    remote = [np.concatenate([r[0][i] for r in results]) for i in range(3)]
    same = all(common.same_bits(a, b) for a, b in zip((chi2, kfit, gfit), remote))

    # The best fit, on the Ray results.
    c2 = remote[0].reshape(periods.size, eccs.size, phases.size, omegas.size)
    i, j, l, k = np.unravel_index(np.argmin(c2), c2.shape)
    m = l * omegas.size + k
    best = {
        "period": periods[i],
        "ecc": eccs[j],
        "omega": omegas[k],
        "phase": phases[l],
        "K": remote[1][i, j, m],
        "gamma": remote[2][i, j, m],
    }
    dof = args.ndata - 6
    steps = {
        "period": abs(math.log(best["period"] / TRUTH["period"])) / math.log(periods[1] / periods[0]),
        "ecc": abs(best["ecc"] - TRUTH["ecc"]) / (eccs[1] - eccs[0]),
        "omega": angle_steps(best["omega"], TRUTH["omega"], omegas[1] - omegas[0]),
        "phase": angle_steps(best["phase"], TRUTH["phase"], phases[1] - phases[0]),
    }

    print("\n== summary: ray_orbits ==")
    common.print_timing("grid", npoints, "grid points", local_s, ray_s)
    common.print_workers([r for _, r in results])
    print(f"best fit: chi2 = {c2[i, j, l, k]:.1f} for {dof} degrees of freedom (reduced {c2[i, j, l, k] / dof:.2f})")
    print(f"  {'':8} {'injected':>10} {'best':>10} {'grid steps off':>15}")
    units = {"period": "d", "K": "m/s", "gamma": "m/s"}
    for name in ("period", "ecc", "omega", "phase", "K", "gamma"):
        off = f"{steps[name]:15.2f}" if name in steps else f"{'':15}"
        print(f"  {name:8} {TRUTH[name]:10.4g} {best[name]:10.4g} {off}  {units.get(name, '')}")
    recovered = (
        steps["period"] <= 2.0
        and steps["ecc"] <= 2.0
        and steps["omega"] <= 2.0
        and steps["phase"] <= 2.0
        and abs(best["K"] - TRUTH["K"]) <= 0.2 * TRUTH["K"]
    )
    print(f"injected orbit {'recovered' if recovered else 'NOT recovered'} (within 2 grid steps, K within 20%)")
    if not same:
        print("results: Ray DIFFERS from local")
        return 1
    print(f"results: Ray == local, bit for bit ({npoints:,} grid points x chi2, K, gamma)")
    return 0 if recovered else 2


if __name__ == "__main__":
    sys.exit(main())
