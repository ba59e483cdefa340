#!/usr/bin/env bash
# Every test of kernjit, Rust and Python, on a fresh machine with Rust and
# Python 3.9+: the README's test command, and what .ci/run calls.
#
#   bash tests/run_all.sh            # all of it
#   KERNJIT_VENV=DIR bash tests/run_all.sh   # another venv than ./.venv
#
# It makes a local venv (./.venv) with NumPy (the independent oracle of the
# kernels/ files), pytest, cloudpickle, joblib, Numba (mixed-code tests),
# Ray 2.60 (tests on a real local cluster) and tqdm (the Ray examples),
# builds and installs the Python package from ./python as a release wheel
# (`pip install ./python`, as a user would), then runs `cargo test
# --release` and the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${KERNJIT_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    echo "== creating the venv $venv"
    python3 -m venv "$venv"
fi
py="$(cd "$venv" && pwd)/bin/python"
pip_quiet=(--quiet --disable-pip-version-check)

echo "== Python test dependencies"
"$py" -m pip install "${pip_quiet[@]}" numpy pytest cloudpickle joblib numba "ray==2.60.0" tqdm
"$py" -c "import numpy, numba, ray; print('numpy', numpy.__version__, '· numba', numba.__version__, '· ray', ray.__version__)"

# The Rust tests run every kernels/ file under CPython + NumPy too: the
# venv's python3 comes first on PATH, and a missing NumPy is a failure.
export PATH="$(dirname "$py"):$PATH"
export KERNJIT_REQUIRE_CPYTHON=1

echo "== Rust tests (cargo test --release)"
cargo test --release --locked

echo "== Python package (pip install ./python: a release abi3 wheel)"
"$py" -m pip install "${pip_quiet[@]}" ./python
# Run from outside the source tree so the installed wheel is what is tested.
echo "== Python tests (pytest python/tests)"
(cd python/tests && "$py" -m pytest -q -p no:cacheprovider .)
