"""Helpers for the Python tests: kernels in real .py files, fresh interpreters."""

import importlib.util
import itertools
import os
import subprocess
import sys
import textwrap

import pytest

_counter = itertools.count()


@pytest.fixture
def make_module(tmp_path):
    """make_module(source, name=None) writes `source` (dedented) to a .py
    file in tmp_path and imports it; the module object has __file__."""
    added = []

    def make(source, name=None):
        name = name or f"kj_mod_{next(_counter)}"
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        if str(tmp_path) not in sys.path:
            sys.path.insert(0, str(tmp_path))
            added.append(str(tmp_path))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    yield make
    for entry in added:
        sys.path.remove(entry)


@pytest.fixture
def run_python(tmp_path):
    """run_python(script, *args, cwd=tmp_path, env=None) runs `script`
    (dedented source, written to a file) in a fresh interpreter; returns
    the CompletedProcess (stdout/stderr as text), failing with its output
    if the exit code is not 0."""

    def run(script, *args, cwd=None, env=None, name="script.py", check=True):
        path = tmp_path / name
        path.write_text(textwrap.dedent(script))
        environment = dict(os.environ)
        environment.pop("KERNJIT_DISABLE_JIT", None)
        environment.update(env or {})
        done = subprocess.run(
            [sys.executable, str(path), *map(str, args)],
            cwd=str(cwd or tmp_path),
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and done.returncode != 0:
            pytest.fail(f"{path.name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    return run
