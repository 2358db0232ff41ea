"""Shared pytest fixtures for coderstack.

Integration tests use the real parts the testbed runs (kube-apiserver, helm, PostgreSQL, the
registry, the Coder server). Where a part is missing on a developer's machine they skip with the
reason; with CI=true a missing part is a failure, never a skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

from helpers.ansible_run import run_playbook
from helpers.parts import need
from helpers.testbed import Testbed


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def testbed() -> Testbed:
    tb = Testbed(REPO)
    need(
        tb.api_ready(), f"testbed API server is not running (start it: bash testbed/up.sh); kubeconfig {tb.kubeconfig}"
    )
    return tb


@pytest.fixture(scope="session")
def kube(testbed: Testbed):
    """A kubernetes.client ApiClient for the testbed."""
    return testbed.api_client()


@pytest.fixture()
def playbook():
    """Run ansible-playbook; returns a PlaybookResult (rc, stdout, recap)."""
    return run_playbook


@pytest.fixture(scope="session")
def converged(testbed):
    """The whole platform converged once on the testbed (site.yml), for tests that act on a running install."""
    result = run_playbook("site.yml", timeout=1800)
    assert result.rc == 0, f"site.yml did not converge on the testbed:\n{result.output[-4000:]}"
    return result
