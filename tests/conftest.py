"""Shared test settings. With ABLATE_REQUIRE_ALL_TESTS=1 (CI sets it) a test skipped for
a missing dependency fails instead: CI installs everything the tests need."""

import os

import pytest
import torch
from threadpoolctl import threadpool_limits

# Tests use tiny tensors: one thread is faster than two, and does not collapse when
# another process competes for the two cores.
torch.set_num_threads(1)
threadpool_limits(1)  # numpy's and scikit-learn's BLAS too (the probes)

REQUIRE_ALL = os.environ.get("ABLATE_REQUIRE_ALL_TESTS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but ABLATE_REQUIRE_ALL_TESTS=1 forbids skips: {reason}"
