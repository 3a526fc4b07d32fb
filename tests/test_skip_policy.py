"""The suite's skip policy: a test skipped because something it needs is missing says why,
and with ABLATE_REQUIRE_ALL_TESTS=1 (CI, which installs everything) the skip is a failure.
The PostgreSQL server tests rely on it (tests/test_scaleout.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

from servers import POSTGRES_MISSING

CONFTEST = Path(__file__).with_name("conftest.py")
NEEDS_MISSING_THING = f'''
import pytest

@pytest.fixture(scope="module")
def server():
    pytest.skip({POSTGRES_MISSING!r})

def test_uses_the_server(server):
    pass
'''


def run_suite(tmp_path: Path, require_all: bool) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_needs.py").write_text(NEEDS_MISSING_THING)
    env = {"PATH": "/usr/bin:/bin", **({"ABLATE_REQUIRE_ALL_TESTS": "1"} if require_all else {})}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("require_all", [False, True])
def test_a_skip_for_a_missing_dependency_says_why_and_fails_in_ci(tmp_path, require_all):
    result = run_suite(tmp_path, require_all)
    if require_all:
        assert result.returncode == 1, result.stdout
        assert "ABLATE_REQUIRE_ALL_TESTS=1 forbids skips" in result.stdout
    else:
        assert result.returncode == 0, result.stdout
        assert "1 skipped" in result.stdout
    assert "not found: apt-get install postgresql" in result.stdout  # the reason and the fix
