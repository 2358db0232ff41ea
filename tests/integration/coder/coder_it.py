"""Shared pieces of the Coder module tests (imported by conftest.py and the tests; a unique module name)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "unit" / "coder"))
from coder_mu import load
from helpers.coder_server import ThrowawayCoder
from helpers.modules import run_module as _run_module

CoderClient = load("coder_client").CoderClient
ADMIN = {
    "username": "admin",
    "email": "admin@it.example.com",
    "password": "It-Admin-Pass-8b1d6f0c2e",
    "name": "IT Admin",
}


class CoderServer(ThrowawayCoder):
    """A throwaway Coder without provisioners (these tests use the users/tokens API only)."""

    admin_token = ""

    def client(self, token: str | None = None) -> CoderClient:
        return CoderClient(self.url, token=token)


def run_module(module: str, args: dict, check: bool = False, diff: bool = True, testbed=None) -> dict:
    """Run one of our modules with `ansible localhost -m` and return its JSON result."""
    return _run_module(module, args, check=check, diff=diff, timeout=300)
