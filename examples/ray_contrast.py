#!/usr/bin/env python3
"""A contrast curve by fake-planet injection, on Ray: the detection limit of
angular differential imaging (ADI) around a star, measured by injecting a
planet at many (separation, position angle) positions and recovering it,
with the kernels of kernels/planets.kern.

    python examples/ray_contrast.py --quick               # small, local Ray on 2 CPUs
    python examples/ray_contrast.py --size 160 --radii 30 --angles 48
    python examples/ray_contrast.py --address HEAD:6379   # join a running cluster

The data: a synthetic ADI cube (frames of a coronagraphic star: a smooth
halo, quasi-static speckles that stay fixed on the detector while the sky
rotates by the parallactic angle, photon and read noise).

One injection test per position (adi_contrast): the planet's PSF is
injected into every frame where the field rotation puts it
(inject_planet_cube, i.e. inject_planets per frame), the classical-ADI final
image (minus the per-pixel median over frames, derotated, averaged) is
formed around it for the injected and the original cube, and the PSF is the
matched filter. Per position: the flux recovered from the injected minus
the original image, the original alone (a noise sample at that separation),
and the injected image. Per separation: throughput (recovered / injected:
ADI subtracts part of a planet that moves too little), noise (the spread of
the original's samples over position angles), the S/N of the injected
planet and the 5-sigma contrast 5 noise / (throughput * star flux).

Tasks are batches of positions; the reference is one call over all
positions in this process. The Ray results must be the same bits (exit
code 1 if not).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _ray_common as common  # noqa: E402  (driver-side helpers only)

import kernjit  # noqa: E402

planets = kernjit.load(common.KERNELS / "planets.kern")
adi_contrast = planets.adi_contrast  # ships by value with the kernels it calls



# ----------------------------------------------------------------------------
# The task (runs on the workers; also the local reference)


def contrast_batch(cube, parang, xc, yc, radii, thetas, flux, sigma, radius):
    """Injection tests at the positions (radii[p], thetas[p]); returns the
    (n, 3) array of adi_contrast and a report (pid, node and, on the call
    that compiled the kernel in this process, that call's time)."""
    t_task = time.perf_counter()
    out, report = common.timed_call(adi_contrast, cube, parang, xc, yc, radii, thetas, flux, sigma, radius)
    report["items"] = radii.shape[0]
    report["task_s"] = time.perf_counter() - t_task
    return out, report


# ----------------------------------------------------------------------------
# Synthetic ADI cube


def smooth_noise(rng, shape, scale):
    """Unit-variance Gaussian random field smoothed at `scale` pixels."""
    h, w = shape
    white = rng.standard_normal((h, w))
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.rfftfreq(w)[None, :]
    kernel = np.exp(-2.0 * (np.pi * scale) ** 2 * (kx**2 + ky**2))
    field = np.fft.irfft2(np.fft.rfft2(white) * kernel, s=(h, w))
    return field / field.std()


def synthetic_cube(args, rng):
    """(cube, parang, xc, yc, star_flux): star halo and speckles fixed on
    the detector, varying a little from frame to frame, plus noise."""
    n = args.size
    xc = yc = (n - 1) / 2.0
    y, x = np.mgrid[0:n, 0:n]
    r = np.hypot(x - xc, y - yc)
    star_flux = 1e7
    peak = star_flux / (2 * np.pi * args.sigma**2)  # the unocculted star's peak
    halo = 1e-2 * peak * (1.0 + (r / (2.0 * args.sigma)) ** 2) ** -1.5
    speckles = halo * np.exp(0.8 * smooth_noise(rng, (n, n), args.sigma))
    parang = np.deg2rad(np.linspace(-0.5 * args.rotation, 0.5 * args.rotation, args.frames))
    cube = np.empty((args.frames, n, n))
    for k in range(args.frames):
        frame = speckles * np.exp(0.3 * smooth_noise(rng, (n, n), args.sigma))  # quasi-static
        frame += np.sqrt(frame + 10.0) * rng.standard_normal((n, n))  # photons (and a sky of 10)
        cube[k] = frame
    return cube, parang, xc, yc, star_flux


def positions(args):
    """Separations from 2 FWHM out to the edge, args.angles position angles
    at each (turned by the golden angle from one separation to the next)."""
    fwhm = 2.3548 * args.sigma
    rmax = (args.size - 1) / 2.0 - args.radius - 2.0
    seps = np.linspace(2.0 * fwhm, rmax, args.radii)
    golden = np.pi * (3.0 - np.sqrt(5.0))
    radii = np.repeat(seps, args.angles)
    thetas = (np.tile(np.arange(args.angles) * 2 * np.pi / args.angles, args.radii)
              + np.repeat(np.arange(args.radii) * golden, args.angles)) % (2 * np.pi)
    return seps, radii, thetas


def contrast_table(seps, out, args, flux, star_flux):
    rows = []
    for i, sep in enumerate(seps):
        block = out[i * args.angles : (i + 1) * args.angles]
        throughput = block[:, 0].mean() / flux
        noise = block[:, 1].std(ddof=1)
        snr = block[:, 2].mean() / noise
        contrast = 5.0 * noise / (throughput * star_flux)
        rows.append((sep, throughput, noise, snr, contrast))
    return rows


# ----------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = common.make_parser(__doc__)
    parser.add_argument("--size", type=int, default=128, help="frame side in pixels (default 128)")
    parser.add_argument("--frames", type=int, default=16, help="frames in the cube (default 16)")
    parser.add_argument("--rotation", type=float, default=60.0, help="field rotation over the cube, degrees")
    parser.add_argument("--radii", type=int, default=20, help="separations (default 20)")
    parser.add_argument("--angles", type=int, default=36, help="position angles per separation (default 36)")
    parser.add_argument("--batch", type=int, default=24, help="positions per Ray task (default 24)")
    parser.add_argument("--sigma", type=float, default=1.5, help="PSF Gaussian sigma, pixels")
    parser.add_argument("--radius", type=float, default=3.0, help="matched-filter radius, pixels")
    parser.add_argument("--contrast", type=float, default=2e-4, help="injected planet flux / star flux")
    common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    common.apply_quick(args, {"size": 48, "frames": 8, "radii": 4, "angles": 8, "batch": 8}, parser)

    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    cube, parang, xc, yc, star_flux = synthetic_cube(args, rng)
    seps, radii, thetas = positions(args)
    npos = radii.shape[0]
    flux = args.contrast * star_flux
    print(
        f"cube: {args.frames} frames of {args.size}x{args.size}, {args.rotation:g} deg of field rotation "
        f"(made in {time.perf_counter() - t:.2f} s); {npos} positions = {args.radii} separations "
        f"x {args.angles} angles, planet {args.contrast:g} of the star"
    )

    t = time.perf_counter()
    local, _ = contrast_batch(cube, parang, xc, yc, radii, thetas, flux, args.sigma, args.radius)
    local_s = time.perf_counter() - t
    print(f"local: {local_s:.2f} s (one call over all positions, {common.threads_note()})")

    starts = list(range(0, npos, args.batch))
    with common.ray_session(args) as ray:
        task = ray.remote(num_cpus=1)(contrast_batch)
        t = time.perf_counter()
        shared = [ray.put(cube), ray.put(parang)]
        refs = [
            task.remote(*shared, xc, yc, radii[s : s + args.batch], thetas[s : s + args.batch],
                        flux, args.sigma, args.radius)
            for s in starts
        ]
        results = common.wait_all(
            ray, refs, "inject+recover", "pos", [min(args.batch, npos - s) for s in starts], not args.no_progress
        )
        ray_s = time.perf_counter() - t
    remote = np.concatenate([out for out, _ in results])

    print("\n== summary: ray_contrast ==")
    common.print_timing("positions", npos, "positions", local_s, ray_s)
    common.print_workers([r for _, r in results])
    print("contrast curve (classical ADI, matched filter; throughput = recovered / injected flux):")
    print(f"  {'sep px':>7} {'sep FWHM':>9} {'throughput':>11} {'noise':>10} {'S/N':>7} {'5-sigma contrast':>17}")
    fwhm = 2.3548 * args.sigma
    for sep, throughput, noise, snr, contrast in contrast_table(seps, remote, args, flux, star_flux):
        print(f"  {sep:7.1f} {sep / fwhm:9.2f} {throughput:11.3f} {noise:10.1f} {snr:7.1f} {contrast:17.2e}")
    if not common.same_bits(local, remote):
        bad = np.unique(np.nonzero(local != remote)[0])
        print(f"results: Ray DIFFERS from local at {bad.size} positions, first {bad[:5].tolist()}")
        return 1
    print(f"results: Ray == local, bit for bit ({npos} positions x 3 fluxes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
