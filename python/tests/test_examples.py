"""Smoke test of the Ray examples: examples/ray_night.py, ray_contrast.py
and ray_orbits.py, each run with --quick in a fresh interpreter, against a
local Ray of its own (ray.init(num_cpus=2) inside the example; it is shut
down before the example exits). Each must exit 0 (0 also means: the Ray
results equal the single-process reference bit for bit) and print its
summary.

Skipped when Ray is not installed, unless KERNJIT_REQUIRE_RAY is set (as
CI sets it), where that is a failure.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _require_ray():
    try:
        import ray  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as error:
        reason = f"the Ray examples need Ray and NumPy ({error})"
        if os.environ.get("KERNJIT_REQUIRE_RAY", "").strip() not in ("", "0"):
            pytest.fail(f"KERNJIT_REQUIRE_RAY is set but {reason}", pytrace=False)
        pytest.skip(reason)


def _run(script):
    env = dict(os.environ)
    for name in ("KERNJIT_DISABLE_JIT", "RAY_ADDRESS"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick"],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        pytest.fail(f"{script} --quick exited with {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}")
    return done.stdout


@pytest.mark.parametrize(
    "script, expected",
    [
        ("ray_night.py", ["frames/s", "(8 calibrated frames)", "sky flatness"]),
        ("ray_contrast.py", ["positions/s", "contrast curve", "5-sigma contrast"]),
        ("ray_orbits.py", ["grid points/s", "injected orbit recovered"]),
    ],
)
def test_example_quick(script, expected):
    _require_ray()
    out = _run(script)
    name = script[:-3]
    assert f"== summary: {name} ==" in out, out
    assert "local, 1 process" in out and "ray   " in out, out
    assert "per worker" in out and "first call median" in out, out
    assert "results: Ray == local, bit for bit" in out, out
    for text in expected:
        assert text in out, f"{text!r} missing:\n{out}"
