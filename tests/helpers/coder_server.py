"""Throwaway REAL Coder servers for tests.

Each is the testbed's `coder` binary on a free 127.0.0.1 port with a database of its own in the testbed's
PostgreSQL (created here, dropped on stop), so a test starts from an empty Coder and never disturbs the platform's
in-cluster Coder. With provisioners > 0 its built-in provisioner daemons run the testbed's
terraform (OpenTofu) with TF_CLI_CONFIG_FILE pointing at the offline provider mirror.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

from helpers.parts import STATE, need


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as r:  # noqa: S310 - loopback http URL
            return r.status == 200
    except OSError:
        return False


def need_coder_parts() -> None:
    """The Coder binary and the testbed PostgreSQL are there (skip/fail otherwise)."""
    need((STATE / "bin" / "coder").exists(), "no Coder binary (bash testbed/build_coder.sh)")
    need((STATE / "postgres-url").exists(), "testbed PostgreSQL is not running (bash testbed/svc_20_postgres.sh start)")
    try:
        import psycopg2

        psycopg2.connect((STATE / "postgres-url").read_text().strip(), connect_timeout=3).close()
    except Exception as e:  # noqa: BLE001 - any failure means the part is missing
        need(False, f"testbed PostgreSQL does not answer: {e}")


def need_terraform() -> None:
    need((STATE / "bin" / "terraform").exists(), "no terraform (bash testbed/build_terraform.sh)")
    need((STATE / "terraformrc").exists(), "no provider mirror config (bash testbed/build_terraform.sh)")


class ThrowawayCoder:
    """A Coder server with its own database; `provisioners` built-in provisioner daemons."""

    def __init__(self, tmp: Path, prefix: str = "coder_it", provisioners: int = 0):
        self.binary = STATE / "bin" / "coder"
        self.pg_url = (STATE / "postgres-url").read_text().strip()
        self.db = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmp / self.db
        self.provisioners = provisioners
        self.proc: subprocess.Popen | None = None
        self.log = None

    def _sql(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.pg_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def start(self, timeout: float = 180) -> ThrowawayCoder:
        self._sql(f"CREATE DATABASE {self.db}")
        self.dir.mkdir(parents=True)
        env = {
            "PATH": f"{STATE / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.dir),
            "CODER_PG_CONNECTION_URL": self.pg_url.replace("/coder?", f"/{self.db}?"),
            "CODER_HTTP_ADDRESS": f"127.0.0.1:{self.port}",
            "CODER_ACCESS_URL": self.url,
            "CODER_TELEMETRY_ENABLE": "false",
            "CODER_UPDATE_CHECK": "false",
            "CODER_DERP_SERVER_STUN_ADDRESSES": "disable",
            "CODER_OAUTH2_GITHUB_DEFAULT_PROVIDER_ENABLE": "false",
            "CODER_CACHE_DIRECTORY": str(self.dir / "cache"),
            "CODER_CONFIG_DIR": str(self.dir / "config"),
            "CODER_PROVISIONER_DAEMONS": str(self.provisioners),
        }
        if self.provisioners:
            env["TF_CLI_CONFIG_FILE"] = str(STATE / "terraformrc")
        self.log = open(self.dir / "coder.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(self.binary), "server"], env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while not healthy(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "coder.log").read_text()[-3000:]
                self.stop()
                raise RuntimeError(f"throwaway Coder server did not start:\n{tail}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.log:
            self.log.close()
        try:
            self._drop_database()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _drop_database(self, attempts: int = 30) -> None:
        """DROP ... WITH (FORCE) ends the sessions of role coder; an autovacuum worker busy on the new database (Coder
        2.36 leaves it many freshly migrated tables) is the server's own and cannot be ended by coder: it finishes in
        moments, so the drop is tried again for up to 30 s."""
        import psycopg2

        for i in range(attempts):
            try:
                self._sql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
                return
            except psycopg2.errors.InsufficientPrivilege:
                if i == attempts - 1:
                    raise
                time.sleep(1)
