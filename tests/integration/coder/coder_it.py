"""Shared pieces of the Coder module tests (imported by conftest.py and the tests; a unique module name)."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderClient
from helpers.coder_server import ThrowawayCoder
from helpers.modules import run_module as _run_module

REPO = Path(__file__).resolve().parents[3]
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

    def sql(self, query: str, args: tuple = ()) -> list[tuple]:
        """Run QUERY on this server's own database (to see what the API does not show, e.g. login sessions)."""
        import psycopg2

        conn = psycopg2.connect(self.pg_url.replace("/coder?", f"/{self.db}?"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def sessions(self, username: str) -> int:
        """Live password-login sessions of USERNAME (API keys of login type password)."""
        rows = self.sql(
            "SELECT count(*) FROM api_keys k JOIN users u ON u.id = k.user_id "
            "WHERE u.username = %s AND k.login_type = 'password' AND k.expires_at > now()",
            (username,),
        )
        return rows[0][0]


def run_module(module: str, args: dict, check: bool = False, diff: bool = True, testbed=None) -> dict:
    """Run one of our modules with `ansible localhost -m` and return its JSON result."""
    return _run_module(module, args, check=check, diff=diff, timeout=300)
