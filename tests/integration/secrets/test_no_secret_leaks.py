"""Converge site.yml with -vvv: no secret value appears in the output or in any file the run leaves in the repo.

Secret values are read from the cluster after the run: the database URL and its password (coder-db-url, and
coder-db-credentials in incluster mode), the admin password (coder-admin), the API token (coder-admin-token) and
the users' generated passwords (coder-user-*). Excluded from the file scan, by design: .testbed/ (the testbed's
state: its kubeconfig, the PostgreSQL password file, the registry credentials, dumps), .venv/ and .git/."""

from __future__ import annotations

import base64
import time
from urllib.parse import unquote, urlsplit

import pytest
from helpers.parts import REPO

pytestmark = pytest.mark.slow
EXCLUDED = {".testbed", ".venv", ".git", ".pytest_cache", ".ruff_cache", "__pycache__", "node_modules"}


def _secret_values(kube) -> dict[str, str]:
    from kubernetes import client

    core = client.CoreV1Api(kube)
    values: dict[str, str] = {}
    for s in core.list_namespaced_secret("coder").items:
        name = s.metadata.name
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (s.data or {}).items()}
        if name == "coder-db-url":
            values["db url"] = data["url"]
            pw = urlsplit(data["url"]).password
            if pw:
                values["db password (url)"] = unquote(pw)
        elif name == "coder-db-credentials":
            values["db password"] = data["password"]
        elif name == "coder-admin":
            values["admin password"] = data["password"]
        elif name == "coder-admin-token":
            values["admin token"] = data["token"]
            values["admin token secret part"] = data["token"].split("-", 1)[-1]
        elif name.startswith("coder-user-") and "password" in data:
            values[f"password of {data.get('username', name)}"] = data["password"]
    return {k: v for k, v in values.items() if len(v) >= 8}


def _repo_files():
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO).parts
        if any(part in EXCLUDED for part in rel) or not path.is_file() or path.is_symlink():
            continue
        yield path


def test_vvv_converge_leaks_no_secret(testbed, kube, playbook):
    started = time.time()
    res = playbook("site.yml", args=["-vvv"], timeout=900)
    assert res.rc == 0, res.output[-4000:]
    secrets = _secret_values(kube)
    assert {"db url", "admin password", "admin token"} <= secrets.keys(), sorted(secrets)
    assert "no_log: true" in res.output  # the no_log tasks ran and were hidden
    for what, value in secrets.items():
        assert value not in res.output, f"{what} appears in the -vvv output of site.yml"

    leaks = []
    for path in _repo_files():
        try:
            content = path.read_bytes()
        except OSError:
            continue
        for what, value in secrets.items():
            if value.encode() in content:
                leaks.append(f"{what} in {path.relative_to(REPO)} (modified {path.stat().st_mtime >= started})")
    assert not leaks, leaks
