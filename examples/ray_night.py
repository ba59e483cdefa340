#!/usr/bin/env python3
"""A night of observations, calibrated on Ray: bias, dark and flat correction
of many CCD frames with the kernels of kernels/calibrate.kern.

    python examples/ray_night.py --quick                 # small, local Ray on 2 CPUs
    python examples/ray_night.py --frames 128 --size 1024
    python examples/ray_night.py --address HEAD:6379     # join a running cluster

1. Synthetic raw frames (uint16 counts: bias, dark current with hot pixels,
   a vignetted flat with pixel-to-pixel structure, sky, stars, noise) are
   written into a work directory as .npy files, or as FITS when astropy is
   installed (--format).
2. The driver reads the calibration frames back and builds the masters with
   the kernels: median_combine (bias, darks), master_flat (bias-subtracted
   mean, normalised to 1).
3. The science frames are calibrated in batches, one Ray task per batch
   (calibrate_stack). With --io driver (the default) the driver reads the
   frames and hands them over with ray.put (read-only on the workers, read
   in place); each task returns the calibrated stack it allocated. With
   --io tasks each task reads its frames from the work directory itself
   (which every node must then see: shared storage), writes the calibrated
   frames there with --save, and returns their SHA-256 digests.
4. The same batches run in this process first (the reference, no Ray); the
   Ray results must be the same bits. Exit code 1 if they are not.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _ray_common as common  # noqa: E402  (driver-side helpers only)

import kernjit  # noqa: E402

calibrate = kernjit.load(common.KERNELS / "calibrate.kern")
# Module-level names, so the task below captures the kernels themselves:
# they pickle by value (source and options) and compile on each worker.
calibrate_stack = calibrate.calibrate_stack
median_combine = calibrate.median_combine
master_flat = calibrate.master_flat



# ----------------------------------------------------------------------------
# The task (runs on the workers; also the local reference)


def calibrate_batch(frames, bias, dark, flat, exptime):
    """Calibrates one batch of raw frames (nf, h, w) into a new float32
    stack; returns (stack, report) with the worker's pid, node and, on the
    call that compiled the kernel in this process, that call's time."""
    t_task = time.perf_counter()
    out = np.empty(frames.shape, dtype=np.float32)
    _, report = common.timed_call(calibrate_stack, frames, bias, dark, flat, exptime, out)
    report["items"] = frames.shape[0]
    report["task_s"] = time.perf_counter() - t_task
    return out, report


def calibrate_files(paths, bias, dark, flat, exptime, outdir, keep):
    """--io tasks: reads one batch of raw frames from `paths`, calibrates
    them (calibrate_batch) and writes them into `outdir` (unless None);
    returns (the SHA-256 of each calibrated frame, the stack if `keep`,
    the report)."""
    t_task = time.perf_counter()
    stack, report = calibrate_batch(read_stack(paths), bias, dark, flat, exptime)
    digests = [hashlib.sha256(frame.tobytes()).hexdigest() for frame in stack]
    if outdir is not None:
        for path, frame in zip(paths, stack):
            write_frame(Path(outdir) / Path(path).name, frame, "SCIENCE", exptime)
    report["task_s"] = time.perf_counter() - t_task
    return digests, (stack if keep else None), report


# ----------------------------------------------------------------------------
# Synthetic night


def synthetic_night(args, rng):
    """The instrument (true bias, dark rate, flat) and a star field."""
    h = w = args.size
    y, x = np.mgrid[0:h, 0:w]
    r2 = ((x - w / 2) ** 2 + (y - h / 2) ** 2) / (0.5 * max(h, w)) ** 2
    bias = 1000.0 + 3.0 * np.sin(x / 7.0) + 0.01 * y  # amplifier pattern, gradient
    dark = np.full((h, w), 0.02)  # counts per second
    hot = rng.random((h, w)) < 1e-3
    dark[hot] = rng.uniform(1.0, 5.0, hot.sum())
    flat = (1.0 - 0.15 * r2) * (1.0 + 0.01 * rng.standard_normal((h, w)))  # vignetting, pixel response
    flat /= flat.mean()
    stars = np.zeros((h, w))
    nstars = max(5, h * w // 4000)
    sx, sy = rng.uniform(0, w, nstars), rng.uniform(0, h, nstars)
    flux = 10 ** rng.uniform(3.0, 5.0, nstars)
    for cx, cy, f in zip(sx, sy, flux):  # 2-pixel Gaussian stars, within a stamp
        x0, x1 = max(int(cx) - 8, 0), min(int(cx) + 9, w)
        y0, y1 = max(int(cy) - 8, 0), min(int(cy) + 9, h)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        stars[y0:y1, x0:x1] += f * np.exp(-0.5 * ((xx - cx) ** 2 + (yy - cy) ** 2) / 4.0) / (8 * np.pi)
    return bias, dark, flat, stars


def expose(rng, bias, dark, flat, light, exptime, read_noise=5.0):
    """One raw uint16 frame: bias + dark * t + flat * light * t, with noise."""
    electrons = flat * light * exptime + dark * exptime
    signal = electrons + np.sqrt(np.maximum(electrons, 0.0)) * rng.standard_normal(bias.shape)
    raw = bias + signal + read_noise * rng.standard_normal(bias.shape)
    return np.clip(np.rint(raw), 0, 65535).astype(np.uint16)


def write_frames(args, workdir: Path, rng):
    """Writes bias, dark, flat and science frames; returns their paths."""
    bias, dark, flat, stars = synthetic_night(args, rng)
    sky = 20.0  # counts per second
    kinds = {
        "bias": (args.nbias, lambda: expose(rng, bias, dark, flat, 0.0, 0.0)),
        "dark": (args.ndark, lambda: expose(rng, bias, dark, flat, 0.0, args.dark_exptime)),
        "flat": (args.nflat, lambda: expose(rng, bias, dark, flat, 20000.0, 1.0)),
        "science": (args.frames, lambda: expose(rng, bias, dark, flat, sky + stars / args.exptime, args.exptime)),
    }
    exptimes = {"bias": 0.0, "dark": args.dark_exptime, "flat": 1.0, "science": args.exptime}
    paths = {}
    for kind, (count, make) in kinds.items():
        paths[kind] = []
        for i in range(count):
            frame = make()
            path = workdir / "raw" / f"{kind}_{i:04d}.{args.format}"
            write_frame(path, frame, kind.upper(), exptimes[kind])
            paths[kind].append(path)
    return paths, sky


def write_frame(path: Path, frame: np.ndarray, kind: str, exptime: float) -> None:
    if path.suffix == ".fits":
        from astropy.io import fits

        header = fits.Header()
        header["IMAGETYP"] = kind
        header["EXPTIME"] = exptime
        fits.writeto(path, frame, header, overwrite=True)
    else:
        np.save(path, frame)


def read_frame(path: Path) -> np.ndarray:
    if path.suffix == ".fits":
        from astropy.io import fits

        # FITS is big-endian: native byte order for the kernels
        return np.ascontiguousarray(fits.getdata(path), dtype=np.uint16)
    return np.load(path)


def read_stack(paths) -> np.ndarray:
    return np.stack([read_frame(p) for p in paths])


def block_flatness(image: np.ndarray, block: int = 16) -> float:
    """Relative spread of the median sky over blocks of the image."""
    h, w = image.shape
    h, w = h - h % block, w - w % block
    blocks = image[:h, :w].reshape(h // block, block, w // block, block).swapaxes(1, 2).reshape(-1, block * block)
    sky = np.median(blocks, axis=1)
    return float(np.std(sky) / np.median(sky))


# ----------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = common.make_parser(__doc__)
    parser.add_argument("--frames", type=int, default=64, help="science frames (default 64)")
    parser.add_argument("--size", type=int, default=1024, help="frame side in pixels (default 1024)")
    parser.add_argument("--batch", type=int, default=4, help="frames per Ray task (default 4)")
    parser.add_argument("--exptime", type=float, default=120.0, help="science exposure, s")
    parser.add_argument("--dark-exptime", type=float, default=300.0, help="dark exposure, s")
    parser.add_argument("--nbias", type=int, default=9)
    parser.add_argument("--ndark", type=int, default=5)
    parser.add_argument("--nflat", type=int, default=7)
    parser.add_argument(
        "--format",
        choices=("auto", "npy", "fits"),
        default="auto",
        help="raw files (default auto: fits when astropy is installed)",
    )
    parser.add_argument(
        "--workdir", default=None, help="where the raw (and --save'd) frames go (default: a temp dir, removed)"
    )
    parser.add_argument("--save", action="store_true", help="write the calibrated frames to WORKDIR/calibrated/")
    parser.add_argument(
        "--io",
        choices=("driver", "tasks"),
        default="driver",
        help="who reads the raw frames: the driver (then ray.put; default) or each task "
        "(WORKDIR must then be on storage every node sees)",
    )
    common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    common.apply_quick(args, {"frames": 8, "size": 128, "batch": 2, "nbias": 3, "ndark": 3, "nflat": 3}, parser)
    if args.format == "auto":
        try:
            import astropy.io.fits  # noqa: F401

            args.format = "fits"
        except ImportError:
            args.format = "npy"

    own_dir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="kernjit-night-")) if own_dir else Path(args.workdir)
    (workdir / "raw").mkdir(parents=True, exist_ok=True)
    try:
        return run(args, workdir)
    finally:
        if own_dir and not args.save:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args, workdir: Path) -> int:
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    paths, sky = write_frames(args, workdir, rng)
    nfiles = sum(len(v) for v in paths.values())
    print(
        f"night: {args.frames} science frames of {args.size}x{args.size} uint16 "
        f"({args.nbias} bias, {args.ndark} dark, {args.nflat} flat), {nfiles} {args.format} files "
        f"in {workdir}/raw, written in {time.perf_counter() - t:.1f} s"
    )

    # Masters, in this process, with the kernels.
    t = time.perf_counter()
    bias_frames = read_stack(paths["bias"])
    dark_frames = read_stack(paths["dark"])
    flat_frames = read_stack(paths["flat"])
    h, w = bias_frames.shape[1:]
    master_bias = np.empty((h, w))
    median_combine(bias_frames, master_bias)
    dark_median = np.empty((h, w))
    median_combine(dark_frames, dark_median)
    dark_rate = (dark_median - master_bias) / args.dark_exptime
    flat_norm = np.empty((h, w))
    flat_level = master_flat(flat_frames, master_bias, flat_norm)
    print(f"masters: bias, dark, flat (level {flat_level:.0f} counts) in {time.perf_counter() - t:.2f} s")

    batches = [paths["science"][i : i + args.batch] for i in range(0, args.frames, args.batch)]
    sizes = [len(b) for b in batches]
    masters = (master_bias, dark_rate, flat_norm)
    outdir = workdir / "calibrated"
    if args.save:
        outdir.mkdir(exist_ok=True)
    if args.io == "driver":
        t = time.perf_counter()
        raw_batches = [read_stack(b) for b in batches]
        print(
            f"read {args.frames} science frames in {time.perf_counter() - t:.2f} s; "
            f"{len(batches)} batches of <= {args.batch}"
        )
    else:
        print(f"{len(batches)} batches of <= {args.batch} frames, each read by its task")

    # Reference: this process, no Ray, the same function per batch.
    t = time.perf_counter()
    if args.io == "driver":
        local = [calibrate_batch(raw, *masters, args.exptime)[0] for raw in raw_batches]
    else:
        local_files = [calibrate_files(b, *masters, args.exptime, None, True) for b in batches]
        local = [stack for _, stack, _ in local_files]
    local_s = time.perf_counter() - t
    print(f"local: {local_s:.2f} s ({common.threads_note()})")

    with common.ray_session(args) as ray:
        t = time.perf_counter()
        master_refs = [ray.put(a) for a in masters]
        if args.io == "driver":
            task = ray.remote(num_cpus=1)(calibrate_batch)
            batch_refs = [ray.put(raw) for raw in raw_batches]
            put_s = time.perf_counter() - t
            refs = [task.remote(ref, *master_refs, args.exptime) for ref in batch_refs]
        else:
            task = ray.remote(num_cpus=1)(calibrate_files)
            put_s = time.perf_counter() - t
            save_to = str(outdir) if args.save else None
            refs = [task.remote(b, *master_refs, args.exptime, save_to, False) for b in batches]
        results = common.wait_all(ray, refs, "calibrate", "frame", sizes, not args.no_progress)
        ray_s = time.perf_counter() - t

    # Compare (every bit), and save if asked.
    if args.io == "driver":
        mismatched = [i for i, (a, (b, _)) in enumerate(zip(local, results)) if not common.same_bits(a, b)]
        if args.save:
            for batch, (stack, _) in zip(batches, results):
                for path, frame in zip(batch, stack):
                    write_frame(outdir / path.name, frame, "SCIENCE", args.exptime)
    else:
        mismatched = [i for i, ((a, _, _), (b, _, _)) in enumerate(zip(local_files, results)) if a != b]
    reports = [r[-1] for r in results]
    first_raw = read_frame(batches[0][0]).astype(np.float64)
    first_cal = local[0][0]

    print("\n== summary: ray_night ==")
    common.print_timing(
        "calibrate", args.frames, "frames", local_s, ray_s,
        f"  incl. {put_s:.2f} s of ray.put" + ("" if args.io == "driver" else ", reads in the tasks"),
    )
    pixels = args.frames * h * w
    print(f"  {pixels / ray_s / 1e6:.1f} Mpixel/s on Ray, {pixels / local_s / 1e6:.1f} Mpixel/s local")
    common.print_workers(reports)
    print(
        f"calibration: sky {np.median(first_cal):.0f} counts (expected {sky * args.exptime:.0f}); "
        f"sky flatness over 16x16 blocks {100 * block_flatness(first_raw):.2f}% raw -> "
        f"{100 * block_flatness(first_cal):.2f}% calibrated (frame 0)"
    )
    if args.save:
        print(f"calibrated frames in {outdir}")
    if mismatched:
        print(f"results: Ray DIFFERS from local in batches {mismatched}")
        return 1
    how = "calibrated frames" if args.io == "driver" else "SHA-256 digests of the calibrated frames"
    print(f"results: Ray == local, bit for bit ({args.frames} {how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
