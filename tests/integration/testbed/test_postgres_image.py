"""The testbed's PostgreSQL image (testbed/images/postgres), for real: built with podman FROM the local Debian base,
run on temporary volume directories, and held to the contract of the official `postgres` image that roles/postgres
relies on (POSTGRES_USER/PASSWORD/DB, PGDATA in a subdirectory of the volume, the probes' pg_isready, uid 999).

Containers publish 5432 on 127.0.0.1 only (`-p 127.0.0.1:<port>:5432`); psql runs on the host.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.parts import REPO, STATE, need

IMAGE = "localhost/coderstack-testbed/postgres:test"
BASE = "localhost/coderstack-base:bookworm"
CONTEXT = REPO / "testbed/images/postgres"
PGDATA = "/var/lib/postgresql/data/pgdata"  # what roles/postgres sets: a subdirectory of the mounted volume
MOUNT = "/var/lib/postgresql/data"
PROBE = 'pg_isready -U "$POSTGRES_USER" -d "$POSTGRES_DB" -h 127.0.0.1'  # the role's readiness/liveness probe
PSQL = "/usr/bin/psql"
USER, DB = "coder", "coder"
FIRST_PASSWORD, CHANGED_PASSWORD = "first-Pa55word", "changed-Pa55word"
SLEEP = "SELECT pg_sleep(600)"  # a session that smart shutdown (SIGTERM) would wait for
ANY_IPV4 = "0.0.0.0"  # noqa: S104 - inside the container's own network namespace
ACTIVE_SLEEP = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)'"


def sh(*cmd: str, env: dict | None = None, timeout: int = 120, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def podman_env() -> dict:
    need(shutil.which("podman") is not None, "podman is not installed (testbed/apt-packages.txt, scripts/setup.sh)")
    need(os.access(PSQL, os.X_OK), f"{PSQL} is missing (apt-get install postgresql-client)")
    conf = STATE / "containers/containers.conf"
    if not conf.exists():
        sh("bash", "testbed/build_image_base.sh", "conf")
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    need(
        sh("podman", "image", "exists", BASE, env=env, check=False).returncode == 0,
        f"base image {BASE} is missing (bash testbed/build_image_base.sh)",
    )
    return env


@pytest.fixture(scope="module")
def image(podman_env) -> str:
    t0 = time.monotonic()
    sh("podman", "build", "--network", "host", "--layers", "-t", IMAGE, str(CONTEXT), env=podman_env, timeout=1200)
    size = int(sh("podman", "image", "inspect", "--format", "{{.Size}}", IMAGE, env=podman_env).stdout)
    print(f"\npostgres image build: {time.monotonic() - t0:.1f}s, {size / 1e6:.0f} MB")
    return IMAGE


@dataclass
class Server:
    name: str
    port: int
    volume: Path


@pytest.fixture(scope="module")
def pg(request, image, podman_env):
    """start(volume, ...) -> Server: a detached container on a 127.0.0.1 port; all are removed at the end."""
    names: list[str] = []

    def start(
        volume: Path, password: str | None = FIRST_PASSWORD, user: str | None = None, extra: dict | None = None
    ) -> Server:
        name, port = f"coderstack-pg-test-{uuid.uuid4().hex[:8]}", free_port()
        variables = {"POSTGRES_USER": USER, "POSTGRES_DB": DB, "PGDATA": PGDATA, "POSTGRES_PASSWORD": password}
        env = [a for k, v in (variables | (extra or {})).items() if v is not None for a in ("-e", f"{k}={v}")]
        names.append(name)
        sh(
            "podman", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5432", *env,
            *(["--user", user] if user else []), "-v", f"{volume}:{MOUNT}", image,
            env=podman_env,
        )  # fmt: skip
        return Server(name, port, volume)

    def remove() -> None:
        for name in names:
            sh("podman", "rm", "-f", "-t", "0", name, env=podman_env, check=False)

    request.addfinalizer(remove)
    return start


def volume_dir(factory: pytest.TempPathFactory, mode: int) -> Path:
    """A root-owned directory as a hostPath volume may arrive."""
    path = factory.mktemp("pgvol")
    path.chmod(mode)
    return path


def psql(server: Server, sql: str, password: str, timeout: int = 30) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
    dsn = f"host=127.0.0.1 port={server.port} user={USER} dbname={DB} sslmode=disable"
    return subprocess.run(
        [PSQL, dsn, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def state(server: Server, env: dict) -> tuple[str, int]:
    out = sh("podman", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", server.name, env=env).stdout
    status, code = out.split()
    return status, int(code)


def logs(server: Server, env: dict) -> subprocess.CompletedProcess:
    return sh("podman", "logs", server.name, env=env, check=False)


def wait_ready(server: Server, env: dict, password: str = FIRST_PASSWORD, timeout: float = 120) -> None:
    """Until psql gets in over TCP with the password; fails at once when the container has exited."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = psql(server, "SELECT 1", password)
        if last.returncode == 0:
            return
        if state(server, env)[0] != "running":
            break
        time.sleep(0.5)
    pytest.fail(f"{server.name} not ready ({state(server, env)}): {last and last.stderr}\n{logs(server, env).stderr}")


def wait_exit(server: Server, env: dict, timeout: float = 20) -> tuple[int, float]:
    """(exit code, seconds it took) once the container has exited."""
    t0 = time.monotonic()
    code = int(sh("podman", "wait", server.name, env=env, timeout=int(timeout)).stdout.strip())
    return code, time.monotonic() - t0


@pytest.fixture(scope="module")
def volume(tmp_path_factory) -> Path:
    return volume_dir(tmp_path_factory, 0o755)


@pytest.fixture(scope="module")
def first(pg, volume, podman_env) -> Server:
    """Started as root (as in the pod) on an empty, root-owned 0755 volume."""
    server = pg(volume)
    wait_ready(server, podman_env)
    return server


def test_image_is_labelled_and_stops_with_sigint(image, podman_env):
    fmt = '{{index .Labels "org.opencontainers.image.title"}}|{{.Config.StopSignal}}|{{.Config.User}}'
    out = sh("podman", "image", "inspect", "--format", fmt, image, env=podman_env).stdout
    title, stop_signal, user = out.strip().split("|")
    assert title == "coderstack testbed postgres"
    assert stop_signal == "SIGINT"  # PostgreSQL's fast shutdown
    assert user in ("", "root", "0")  # starts as root like the official image, then drops to 999


def test_probe_of_the_role_succeeds_inside_the_container(first, podman_env):
    out = sh("podman", "exec", first.name, "sh", "-c", PROBE, env=podman_env, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "accepting connections" in out.stdout


def test_password_connects_over_tcp_to_the_database(first):
    out = psql(first, "SELECT current_user, current_database(), current_setting('server_version_num')", FIRST_PASSWORD)
    assert out.returncode == 0, out.stderr
    user, db, version = out.stdout.strip().split("|")
    assert (user, db) == (USER, DB)
    assert version.startswith("15")


def test_password_is_scram_and_no_address_is_trusted(first):
    out = psql(
        first,
        "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = current_user;"
        " SELECT DISTINCT auth_method FROM pg_hba_file_rules;"
        " SELECT setting FROM pg_settings WHERE name = 'listen_addresses'",
        FIRST_PASSWORD,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["t", "scram-sha-256", "*"]


def test_wrong_password_is_refused(first):
    out = psql(first, "SELECT 1", "not-the-password")
    assert out.returncode != 0
    assert f'password authentication failed for user "{USER}"' in out.stderr


def test_server_is_pid_1_running_as_uid_999(first, volume, podman_env):
    pid = sh("podman", "inspect", "--format", "{{.State.Pid}}", first.name, env=podman_env).stdout.strip()
    status = Path(f"/proc/{pid}/status").read_text()  # PID 1 of the container, seen from the host
    assert re.search(r"^Name:\s+postgres$", status, re.M), status
    assert re.search(r"^Uid:\s+999\s+999\s+999\s+999$", status, re.M), status
    assert re.search(r"^Gid:\s+999\s+999\s+999\s+999$", status, re.M), status
    # the volume was handed to postgres; PGDATA is private to it
    assert (volume.stat().st_uid, volume.stat().st_gid) == (999, 999)
    pgdata = volume / "pgdata"
    assert (pgdata.stat().st_uid, pgdata.stat().st_mode & 0o777) == (999, 0o700)
    assert (pgdata / "PG_VERSION").read_text().strip() == "15"


def test_logs_go_to_stderr(first, podman_env):
    out = logs(first, podman_env)
    assert "database system is ready to accept connections" in out.stderr
    assert out.stdout == ""


@pytest.fixture(scope="module")
def stopped(first, podman_env):
    """A table is made, a session is left open, then `podman stop` (the image's stop signal)."""
    out = psql(first, "CREATE TABLE marker (note text); INSERT INTO marker VALUES ('kept')", FIRST_PASSWORD)
    assert out.returncode == 0, out.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"PGPASSWORD": FIRST_PASSWORD}
    dsn = f"host=127.0.0.1 port={first.port} user={USER} dbname={DB} sslmode=disable"
    session = subprocess.Popen([PSQL, dsn, "-X", "-c", SLEEP], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while psql(first, ACTIVE_SLEEP, FIRST_PASSWORD).stdout.strip() != "1":
            assert session.poll() is None and time.monotonic() < deadline, session.communicate(timeout=5)
            time.sleep(0.2)
        t0 = time.monotonic()
        sh("podman", "stop", "-t", "30", first.name, env=podman_env, timeout=60)
        elapsed = time.monotonic() - t0
        session_rc = session.wait(timeout=10)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    return elapsed, state(first, podman_env), session_rc, logs(first, podman_env).stderr


def test_stop_is_a_fast_shutdown_even_with_a_session_open(stopped):
    elapsed, (status, code), session_rc, log = stopped
    assert elapsed < 10, f"stop took {elapsed:.1f}s"
    assert (status, code) == ("exited", 0), log[-2000:]
    assert session_rc != 0  # its backend was ended, not waited for
    server_log = log.rsplit("docker-entrypoint: starting PostgreSQL", 1)[1]  # not the initdb-time server's
    assert "received fast shutdown request" in server_log
    assert "database system is shut down" in server_log


@pytest.fixture(scope="module")
def second(pg, first, stopped, podman_env) -> Server:
    """The same volume again, with another POSTGRES_PASSWORD in the environment."""
    server = pg(first.volume, password=CHANGED_PASSWORD)
    wait_ready(server, podman_env, password=FIRST_PASSWORD)
    return server


def test_second_start_keeps_the_data(second, podman_env):
    out = psql(second, "SELECT note FROM marker", FIRST_PASSWORD)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "kept"
    log = logs(second, podman_env).stderr
    assert "initialising" not in log
    assert "is initialised" in log
    assert "database system was shut down at" in log  # the fast shutdown was clean: no crash recovery
    assert "automatic recovery in progress" not in log


def test_second_start_keeps_the_password(second):
    assert psql(second, "SELECT 1", FIRST_PASSWORD).returncode == 0
    out = psql(second, "SELECT 1", CHANGED_PASSWORD)
    assert out.returncode != 0
    assert "password authentication failed" in out.stderr


def test_started_as_uid_999_on_a_0777_volume_and_sigterm_ends_it(pg, tmp_path_factory, podman_env):
    """`--user 999:999`: no ownership to fix; SIGTERM (smart shutdown, no session open) ends it with 0.

    Also POSTGRES_LISTEN_ADDRESSES (an addition of this image, for `podman run --network host`)."""
    server = pg(volume_dir(tmp_path_factory, 0o777), user="999:999", extra={"POSTGRES_LISTEN_ADDRESSES": ANY_IPV4})
    wait_ready(server, podman_env)
    assert psql(server, "SHOW listen_addresses", FIRST_PASSWORD).stdout.strip() == ANY_IPV4
    assert sh("podman", "exec", server.name, "sh", "-c", PROBE, env=podman_env, check=False).returncode == 0
    pid = sh("podman", "inspect", "--format", "{{.State.Pid}}", server.name, env=podman_env).stdout.strip()
    assert re.search(r"^Uid:\s+999\s", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert (server.volume / "pgdata").stat().st_uid == 999
    sh("podman", "kill", "--signal", "TERM", server.name, env=podman_env)
    code, elapsed = wait_exit(server, podman_env)
    assert code == 0, logs(server, podman_env).stderr[-2000:]
    assert elapsed < 10, f"SIGTERM took {elapsed:.1f}s"
    assert "received smart shutdown request" in logs(server, podman_env).stderr


@pytest.mark.parametrize(
    ("mode", "user", "password", "message"),
    [
        (0o755, None, None, "POSTGRES_PASSWORD is empty"),
        (0o755, "999:999", FIRST_PASSWORD, "uid 999 cannot create /var/lib/postgresql/data/pgdata"),
    ],
    ids=["no-password", "uid-999-on-root-owned-0755"],
)
def test_refuses_to_start_without_what_initdb_needs(pg, tmp_path_factory, podman_env, mode, user, password, message):
    volume = volume_dir(tmp_path_factory, mode)
    server = pg(volume, password=password, user=user)
    code, _ = wait_exit(server, podman_env, timeout=60)
    log = logs(server, podman_env).stderr
    assert code == 1, log
    assert message in log
    assert not (volume / "pgdata/PG_VERSION").exists()
