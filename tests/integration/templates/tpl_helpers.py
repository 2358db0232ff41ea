"""Helpers of the template tests (a module of its own: test files import it, conftest.py holds the fixtures).

A throwaway REAL Coder server WITH provisioner daemons: like tests/integration/coder/conftest.py (own database in
the testbed's PostgreSQL, free loopback port, so the shared server of testbed/svc_30_coder.sh is never disturbed),
but its built-in provisioners run the testbed's terraform (OpenTofu, testbed/build_terraform.sh) with
TF_CLI_CONFIG_FILE = the offline provider mirror config.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "unit" / "coder"))
from coder_mu import load

CoderClient = load("coder_client").CoderClient
STATE = Path(os.environ.get("CODERSTACK_TESTBED_DIR", REPO / ".testbed"))
TEMPLATES = REPO / "templates"
ADMIN = {"username": "tpladmin", "email": "tpladmin@it.example.com", "password": "Tpl-Admin-Pass-5c7e9a1b3d"}


def need(condition: bool, reason: str) -> None:
    """Skip on a developer machine, fail in CI (same rule as tests/conftest.py)."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required part missing in CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as r:  # noqa: S310 - loopback http URL
            return r.status == 200
    except OSError:
        return False


def need_terraform() -> None:
    need((STATE / "bin" / "terraform").exists(), "no terraform (bash testbed/build_terraform.sh)")
    need((STATE / "terraformrc").exists(), "no provider mirror config (bash testbed/build_terraform.sh)")


class CoderWithProvisioners:
    def __init__(self, tmp: Path):
        self.binary = STATE / "bin" / "coder"
        self.pg_url = (STATE / "postgres-url").read_text().strip()
        self.db = "coder_tpl_" + uuid.uuid4().hex[:8]
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmp / self.db
        self.proc: subprocess.Popen | None = None
        self.token = ""

    def _sql(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.pg_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def start(self) -> CoderWithProvisioners:
        self._sql(f"CREATE DATABASE {self.db}")
        self.dir.mkdir(parents=True)
        env = {
            "PATH": f"{STATE / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.dir),
            "TF_CLI_CONFIG_FILE": str(STATE / "terraformrc"),
            "CODER_PG_CONNECTION_URL": self.pg_url.replace("/coder?", f"/{self.db}?"),
            "CODER_HTTP_ADDRESS": f"127.0.0.1:{self.port}",
            "CODER_ACCESS_URL": self.url,
            "CODER_TELEMETRY_ENABLE": "false",
            "CODER_UPDATE_CHECK": "false",
            "CODER_DERP_SERVER_STUN_ADDRESSES": "disable",
            "CODER_OAUTH2_GITHUB_DEFAULT_PROVIDER_ENABLE": "false",
            "CODER_CACHE_DIRECTORY": str(self.dir / "cache"),
            "CODER_CONFIG_DIR": str(self.dir / "config"),
            "CODER_PROVISIONER_DAEMONS": "2",
        }
        self.log = open(self.dir / "coder.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(self.binary), "server"], env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 180
        while not _healthy(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("throwaway Coder server did not start")
            time.sleep(0.2)
        c = CoderClient(self.url)
        c.create_first_user(ADMIN["username"], ADMIN["email"], ADMIN["password"], "Template Admin")
        session = c.login(ADMIN["email"], ADMIN["password"])
        self.token = CoderClient(self.url, token=session).create_token("me", "tpl-it", 86400)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if getattr(self, "log", None):
            self.log.close()
        try:
            self._sql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def client(self) -> CoderClient:
        return CoderClient(self.url, token=self.token)


def run_module(args: dict, check: bool = False, diff: bool = True) -> dict:
    """Run coder_template with `ansible localhost -m` and return its JSON result."""
    cmd = [
        str(REPO / ".venv/bin/ansible"),
        "localhost",
        "-i",
        "inventories/testbed",
        "-m",
        "coder_template",
        "-a",
        json.dumps(args),
    ]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    try:
        out = json.loads(proc.stdout[proc.stdout.index("{") :])
    except ValueError as e:
        raise AssertionError(f"no JSON from ansible ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from e
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]
