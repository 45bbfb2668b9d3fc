"""nox sessions. `nox -s core` builds the wheel on every supported Python that this machine has
and runs the framework-free tests against the installed wheel (not the source tree)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import nox

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]

# The test files that import no framework (torch, JAX, Keras, dask, safetensors, matplotlib):
# listed by name, not found by skipping, so a core run never passes by skipping a file.
CORE_TESTS = [
    "tests/test_accuracy.py", "tests/test_errors.py", "tests/test_golden.py",
    "tests/test_half.py", "tests/test_invariance.py", "tests/test_manifest.py",
    "tests/test_params.py", "tests/test_philox.py", "tests/test_process.py",
    "tests/test_reference.py", "tests/test_sparse.py", "tests/test_stats.py",
    "tests/test_truncnorm.py",
]
CORE_DEPS = ["pytest>=7", "pytest-timeout>=2.1", "hypothesis>=6.80", "scipy>=1.10", "mpmath>=1.3"]

# A version that is not installed is skipped, with nox's message, never an error (CI too).
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["core"]


def _select_pyenv_versions() -> None:
    """pyenv's shims run `python3.9` only when 3.9 is a selected version: select every installed
    CPython (the current one first), so nox finds each the way it finds any interpreter."""
    if "PYENV_VERSION" in os.environ or shutil.which("pyenv") is None:
        return
    def pyenv(*args: str) -> list[str]:
        out = subprocess.run(["pyenv", *args], capture_output=True, text=True, check=False)
        return out.stdout.split()
    installed = [v for v in pyenv("versions", "--bare", "--skip-aliases")
                 if re.fullmatch(r"\d+\.\d+\.\d+", v)]
    current = [v for v in pyenv("version-name")[:1] if v in installed]
    os.environ["PYENV_VERSION"] = ":".join(current + [v for v in installed if v not in current])


_select_pyenv_versions()


@nox.session(python=PYTHONS)
def core(session: nox.Session) -> None:
    """Build the wheel with this Python, install it with the core test dependencies and run the
    framework-free tests; fails if any of them is skipped."""
    # The wheel, not the checkout, is under test: PYTHONPATH pointing at python/ would shadow it.
    session.env["PYTHONPATH"] = None  # None: nox removes the variable
    wheels = Path(session.create_tmp()) / "wheelhouse"
    shutil.rmtree(wheels, ignore_errors=True)
    session.run("python", "-m", "pip", "wheel", ".", "--no-deps", "--quiet", "-w", str(wheels))
    (wheel,) = wheels.glob("weightfill-*.whl")
    session.install(str(wheel), *CORE_DEPS)
    session.run("python", "-c", "import sys, weightfill as wf, numpy, ml_dtypes; "
                "assert 'site-packages' in wf.__file__, wf.__file__; "
                "print(sys.version.split()[0], 'numpy', numpy.__version__, 'ml_dtypes', "
                "ml_dtypes.__version__, 'kernel', wf.isa(), wf.__file__)")
    report = Path(session.create_tmp()) / "core-junit.xml"
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                f"--junitxml={report}", *CORE_TESTS, *session.posargs)
    skipped = sum(int(s.get("skipped", 0)) for s in ET.parse(report).getroot().iter("testsuite"))
    if skipped:
        session.error(f"{skipped} core test(s) skipped: the core set must run in full")
