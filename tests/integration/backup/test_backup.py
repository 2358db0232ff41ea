"""postgres_backup against real PostgreSQL servers: dump, drop a row, restore, the row is back.

The round trip runs on a scratch database of the testbed's external PostgreSQL (created as the server's superuser
through its Unix socket; its URL names the node IP, which the control host and pods both reach) and a scratch
namespace holding its coder-db-url Secret, so the platform's database is never restored over. Job mode runs pg_dump
in a pod on the real node. One test dumps the platform's in-cluster Coder database (read-only) with a Job."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import stat
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from helpers.parts import REPO, need

PG_PORT = int(os.environ.get("TESTBED_POSTGRES_PORT", "15432"))


def _admin_sql(testbed, sql: str) -> None:
    sock = testbed.state / "postgres-run"
    cmd = [
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        str(sock),
        "-p",
        str(PG_PORT),
        "-d",
        "postgres",
        "-c",
        sql,
    ]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)


@pytest.fixture()
def scratch(testbed, kube):
    """A scratch database owned by role coder, and a namespace whose coder-db-url Secret points at it."""
    from kubernetes import client

    need((testbed.state / "postgres-url").exists(), "testbed PostgreSQL is not running (bash testbed/up.sh)")
    suffix = uuid.uuid4().hex[:8]
    db, ns = f"bk_{suffix}", f"bk-{suffix}"
    _admin_sql(testbed, f"CREATE DATABASE {db} OWNER coder")
    base = testbed.read("postgres-url")
    url = base.replace("/coder?", f"/{db}?").replace("@127.0.0.1:", f"@{testbed.node_ip}:")
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="coder-db-url"),
            data={"url": base64.b64encode(url.encode()).decode()},
        ),
    )
    yield {"ns": ns, "db": db, "url": url}
    with contextlib.suppress(client.ApiException):  # a purge test deletes it itself
        core.delete_namespace(ns)
    _admin_sql(testbed, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def _rows(url: str) -> list[str]:
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT note FROM probe ORDER BY note")
        return [r[0] for r in cur.fetchall()]


def _exec(url: str, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


LOCAL = {"postgres_backup_mode": "local"}


def test_backup_drop_restore_row_is_back(scratch, playbook, tmp_path):
    _exec(scratch["url"], "CREATE TABLE probe (note text); INSERT INTO probe VALUES ('keep-me'), ('other')")
    ev = {"coderstack_namespace": scratch["ns"], "postgres_backup_dir": str(tmp_path), **LOCAL}
    res = playbook("playbooks/backup.yml", extra_vars=ev)
    assert res.rc == 0, res.output
    dumps = list(tmp_path.glob("coder-*.dump"))
    assert len(dumps) == 1, dumps
    assert stat.S_IMODE(dumps[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    password = scratch["url"].split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in res.output

    _exec(scratch["url"], "DELETE FROM probe WHERE note = 'keep-me'")
    assert _rows(scratch["url"]) == ["other"]

    res = playbook("playbooks/restore.yml", extra_vars={**ev, "postgres_backup_file": dumps[0].name})
    assert res.rc == 0, res.output
    assert _rows(scratch["url"]) == ["keep-me", "other"]
    assert password not in res.output


def test_restore_needs_a_named_existing_dump(scratch, playbook, tmp_path):
    ev = {"coderstack_namespace": scratch["ns"], "postgres_backup_dir": str(tmp_path), **LOCAL}
    res = playbook("playbooks/restore.yml", extra_vars=ev)
    assert res.rc != 0 and "set postgres_backup_file" in res.output, res.output
    res = playbook("playbooks/restore.yml", extra_vars={**ev, "postgres_backup_file": "coder-nope.dump"})
    assert res.rc != 0 and "postgres_backup_file coder-nope.dump: no such dump" in res.output, res.output
    assert res.changed == 0


def test_backup_without_url_secret_fails_naming_it(testbed, playbook, tmp_path):
    res = playbook(
        "playbooks/backup.yml",
        extra_vars={
            "coderstack_namespace": "bk-missing-" + uuid.uuid4().hex[:6],
            "postgres_backup_dir": str(tmp_path),
            **LOCAL,
        },
    )
    assert res.rc != 0 and "postgres_backup_url_secret_name" in res.output, res.output
    assert not list(tmp_path.glob("*.dump"))


def test_check_mode_writes_no_dump(scratch, playbook, tmp_path):
    out = tmp_path / "dumps"
    ev = {"coderstack_namespace": scratch["ns"], "postgres_backup_dir": str(out)}
    res = playbook("playbooks/backup.yml", extra_vars={**ev, **LOCAL}, args=["--check"])
    assert res.rc == 0, res.output
    assert not out.exists() or not list(out.glob("*.dump"))


def _dumps_on_pvc(kube, ns: str, pvc: str = "coder-db-backups") -> list[Path]:
    """The dumps a Job wrote: the PVC's volume is a directory of the testbed's hostPath provisioner."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    pv = core.read_persistent_volume(core.read_namespaced_persistent_volume_claim(pvc, ns).spec.volume_name)
    return sorted(Path(pv.spec.host_path.path).glob("coder-*.dump"))


def test_coder_database_dump_has_coders_tables(converged, kube, playbook):
    """The platform's in-cluster Coder database is dumped by a Job on the real node; pg_restore lists Coder's tables."""
    before = _dumps_on_pvc(kube, "coder") if _pvc_exists(kube, "coder") else []
    res = playbook("playbooks/backup.yml")
    assert res.rc == 0, res.output
    dumps = [d for d in _dumps_on_pvc(kube, "coder") if d not in before]
    assert len(dumps) == 1, dumps
    listing = subprocess.run(["pg_restore", "--list", str(dumps[0])], capture_output=True, text=True, check=True).stdout
    assert "TABLE public users" in listing and "TABLE public templates" in listing
    # the Job verified the server's certificate against the platform CA (libpq fails verify-full without a root CA)
    from kubernetes import client

    pg = client.CoreV1Api(kube).read_namespaced_secret("coder-db-backup-env", "coder").data
    assert base64.b64decode(pg["PGSSLMODE"]) == b"verify-full"
    assert base64.b64decode(pg["PGSSLROOTCERT"]) == b"/etc/coderstack/postgres-ca/ca.crt"


def _pvc_exists(kube, ns: str) -> bool:
    from kubernetes import client

    claims = client.CoreV1Api(kube).list_namespaced_persistent_volume_claim(ns).items
    return any(p.metadata.name == "coder-db-backups" for p in claims)


def test_job_mode_runs_pg_dump_in_a_job_on_a_pvc(scratch, kube, playbook):
    """Job mode (for in-cluster databases): the Job and its PVC are applied as rendered, the pod runs on the real
    node and writes the dump onto the PVC; the URL with its password is never on the command line."""
    from kubernetes import client

    ev = {"coderstack_namespace": scratch["ns"], "postgres_backup_mode": "job", "postgres_backup_timeout": 120}
    res = playbook("playbooks/backup.yml", extra_vars=ev)
    assert res.rc == 0, res.output
    jobs = client.BatchV1Api(kube).list_namespaced_job(scratch["ns"]).items
    assert len(jobs) == 1
    job = jobs[0]
    assert job.metadata.name.startswith("coder-db-backup-")
    assert job.spec.backoff_limit == 0
    pod = job.spec.template.spec
    c = pod.containers[0]
    assert re.search(r"/coderstack-testbed/postgres:15@sha256:[0-9a-f]{64}$", c.image), c.image
    env = {e.name: e for e in c.env}
    assert set(env) == {"DUMP"}, "the connection must come from the PG* Secret, not a URL variable"
    assert [e.secret_ref.name for e in c.env_from] == ["coder-db-backup-env"]
    assert env["DUMP"].value.startswith("coder-") and env["DUMP"].value.endswith(".dump")
    # pg_dump's command line (what `ps` shows on the node) names no URL, host or password: libpq reads PG* variables
    assert "pg_dump --format=custom --no-password" in c.args[0]
    assert "--dbname" not in c.args[0] and "PGURL" not in c.args[0] and "PGPASSWORD" not in c.args[0]
    password = urlsplit(scratch["url"]).password
    spec_text = json.dumps(client.ApiClient().sanitize_for_serialization(job))
    assert scratch["url"] not in spec_text and unquote(password) not in spec_text
    pg = client.CoreV1Api(kube).read_namespaced_secret("coder-db-backup-env", scratch["ns"])
    pg_env = {k: base64.b64decode(v).decode() for k, v in pg.data.items()}
    assert pg_env["PGPASSWORD"] == unquote(password)
    assert (pg_env["PGDATABASE"], pg_env["PGUSER"]) == (scratch["db"], urlsplit(scratch["url"]).username)
    assert pg.metadata.labels["app.kubernetes.io/managed-by"] == "coderstack"
    assert pod.volumes[0].persistent_volume_claim.claim_name == "coder-db-backups"
    pvc = client.CoreV1Api(kube).read_namespaced_persistent_volume_claim("coder-db-backups", scratch["ns"])
    assert pvc.spec.resources.requests["storage"] == "10Gi"
    assert job.status.succeeded == 1
    dumps = _dumps_on_pvc(kube, scratch["ns"])
    assert [d.name for d in dumps] == [env["DUMP"].value]
    listing = subprocess.run(["pg_restore", "--list", str(dumps[0])], capture_output=True, text=True, check=True).stdout
    assert f"dbname: {scratch['db']}" in listing


def test_failed_job_is_reported_at_once_with_its_reason(scratch, kube, playbook):
    """A Job whose pg_dump fails (wrong password) ends the wait at once, and the failure names the pod, its exit and
    pg_dump's own error (the termination message), never the password."""
    from kubernetes import client

    wrong = scratch["url"].replace(scratch["url"].split("@")[0].split(":")[-1] + "@", "not-the-password@")
    client.CoreV1Api(kube).patch_namespaced_secret(
        "coder-db-url", scratch["ns"], {"data": {"url": base64.b64encode(wrong.encode()).decode()}}
    )
    ev = {"coderstack_namespace": scratch["ns"], "postgres_backup_mode": "job", "postgres_backup_timeout": 600}
    t0 = time.monotonic()
    res = playbook("playbooks/backup.yml", extra_vars=ev)
    assert res.rc != 0
    assert time.monotonic() - t0 < 300, "the wait went on after the Job had failed"
    assert "did not complete" in res.output and "exited 1" in res.output, res.output[-3000:]
    assert 'password authentication failed for user "coder"' in res.output, res.output[-3000:]
    assert "not-the-password" not in res.output


def test_upgrade_to_the_running_version_changes_nothing(converged, kube, playbook):
    """upgrade.yml at the running version: no dump (nothing migrates), nothing changes. The dump before a real change
    of version is in test_upgrade_rollback.py."""
    before = _dumps_on_pvc(kube, "coder") if _pvc_exists(kube, "coder") else []
    res = playbook("playbooks/upgrade.yml")
    assert res.rc == 0 and res.changed == 0, res.output
    after = _dumps_on_pvc(kube, "coder") if _pvc_exists(kube, "coder") else []
    assert [d for d in after if d not in before] == []
    assert "TASK [coderstack.platform.coder : Coder Helm release" in res.output


def test_purge_takes_a_last_dump_onto_a_kept_volume_and_keeps_a_foreign_namespace(scratch, kube, playbook):
    """A purge dumps the database first (mode auto: a Job for an in-cluster database) onto a volume with reclaim policy
    Retain, deletes the namespace coderstack labelled, and keeps a namespace of the inventory's name that someone else
    made; the dump is still on the volume after the purge."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    core.patch_namespace(scratch["ns"], {"metadata": {"labels": {"app.kubernetes.io/managed-by": "coderstack"}}})
    foreign = scratch["ns"] + "-ws"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=foreign)))
    volume = None
    try:
        ev = {
            "coderstack_namespace": scratch["ns"],
            "coderstack_workspace_namespace": foreign,
            "postgres_mode": "incluster",
            "postgres_backup_timeout": 120,
            "coderstack_purge": True,
            "coderstack_purge_confirm": "yes-delete-all-data",
        }
        res = playbook("playbooks/teardown.yml", extra_vars=ev)
        assert res.rc == 0, res.output[-4000:]
        text = " ".join(res.output.split())
        m = re.search(
            r"Last dump before the purge: (coder-[0-9TZ]+\.dump) on volume (\S+) \(reclaim policy Retain", text
        )
        assert m, text[-3000:]
        volume = m[2]
        assert f"Kept: namespace(s) {foreign}" in text
        assert _gone(core.read_namespace, scratch["ns"]) and not _gone(core.read_namespace, foreign)
        pv = core.read_persistent_volume(volume)
        assert pv.spec.persistent_volume_reclaim_policy == "Retain" and pv.status.phase == "Released"
        dump = Path(pv.spec.host_path.path) / m[1]
        listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True).stdout
        assert f"dbname: {scratch['db']}" in listing
        # the namespace is gone and nothing is left to dump: a second purge changes nothing
        res = playbook("playbooks/teardown.yml", extra_vars=ev)
        assert res.rc == 0 and res.changed == 0, res.output[-3000:]
    finally:
        core.delete_namespace(foreign)
        if volume:
            core.delete_persistent_volume(volume)


def _gone(read, name: str) -> bool:
    from kubernetes import client

    try:
        read(name)
        return False
    except client.ApiException as exc:
        if exc.status == 404:
            return True
        raise


assert REPO.joinpath("playbooks/backup.yml").exists()
_ = Path
