"""Helpers of the template tests: a throwaway REAL Coder WITH provisioner daemons (tests/helpers/coder_server.py)."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderClient
from helpers.coder_server import ThrowawayCoder, need_coder_parts, need_terraform  # noqa: F401 - re-exported
from helpers.modules import run_module as _run_module
from helpers.parts import STATE, need  # noqa: F401 - re-exported

REPO = Path(__file__).resolve().parents[3]
TEMPLATES = REPO / "templates"
ADMIN = {"username": "tpladmin", "email": "tpladmin@it.example.com", "password": "Tpl-Admin-Pass-5c7e9a1b3d"}


class CoderWithProvisioners(ThrowawayCoder):
    """A throwaway Coder with 2 provisioner daemons, its first user and an API token."""

    def __init__(self, tmp: Path):
        super().__init__(tmp, prefix="coder_tpl", provisioners=2)
        self.token = ""

    def start(self, timeout: float = 180) -> CoderWithProvisioners:
        super().start(timeout)
        c = CoderClient(self.url)
        c.create_first_user(ADMIN["username"], ADMIN["email"], ADMIN["password"], "Template Admin")
        session = c.login(ADMIN["email"], ADMIN["password"])
        self.token = CoderClient(self.url, token=session).create_token("me", "tpl-it", 86400)
        return self

    def client(self) -> CoderClient:
        return CoderClient(self.url, token=self.token)


def run_module(args: dict, check: bool = False, diff: bool = True) -> dict:
    """Run coder_template with `ansible localhost -m` and return its JSON result."""
    return _run_module("coderstack.platform.coder_template", args, check=check, diff=diff, timeout=900)
