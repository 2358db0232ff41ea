"""The base workspace image, end to end: role -> real build (podman) -> real registry (TLS, htpasswd).

Uses the testbed's registry (testbed/svc_10_registry.sh, started here if it is down) and the local
debootstrapped base image (testbed/build_image_base.sh). Each session pushes to its own repository
so the first role run always builds and pushes (warm layer cache: fast; cold: several minutes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from helpers.parts import need

REPO = Path(__file__).resolve().parents[3]
STATE = Path(os.environ.get("CODERSTACK_TESTBED_DIR", REPO / ".testbed"))
PLAYBOOK = "playbooks/image.yml"
REPOSITORY = f"coderstack/workspace-test-{uuid.uuid4().hex[:8]}"


def flat(text: str) -> str:
    """Ansible's YAML callback wraps long messages: compare on single-spaced text."""
    return " ".join(text.replace("''", "'").split())


def sh(*cmd: str, env: dict | None = None, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def registry() -> dict:
    for tool in ("podman", "skopeo", "docker-registry", "debootstrap", "htpasswd"):
        need(shutil.which(tool) is not None, f"{tool} is not installed (testbed/apt-packages.txt, scripts/setup.sh)")
    sh("bash", "testbed/svc_10_registry.sh", "start", timeout=120)
    sh("bash", "testbed/build_image_base.sh", timeout=600)
    return {
        "url": (STATE / "registry-url").read_text().strip(),
        "user": (STATE / "registry/username").read_text().strip(),
        "password": (STATE / "registry/password").read_text().strip(),
        "cert_dir": str(Path((STATE / "registry-ca").read_text().strip()).parent),
    }


@pytest.fixture(scope="module")
def podman_env() -> dict:
    return {**os.environ, "CONTAINERS_CONF": str(STATE / "containers/containers.conf")}


def skopeo_inspect(registry: dict, ref: str, env: dict) -> subprocess.CompletedProcess:
    return sh(
        "skopeo", "inspect", "--cert-dir", registry["cert_dir"],
        "--creds", f"{registry['user']}:{registry['password']}", f"docker://{ref}",
        env=env, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def first_run(registry, podman_env):
    t0 = time.monotonic()
    from helpers.ansible_run import run_playbook

    res = run_playbook(PLAYBOOK, extra_vars={"base_image_repository": REPOSITORY}, timeout=3600)
    assert res.rc == 0, res.output[-4000:]
    pushed = re.search(r"pushed (\S+:[\w.-]+)", flat(res.stdout))
    assert pushed, f"no 'pushed <ref>' in the output:\n{res.stdout[-3000:]}"
    print(f"\nfirst role run (build + push): {time.monotonic() - t0:.0f}s")
    return res, pushed.group(1).strip("'\"")


def test_first_run_builds_and_pushes_to_the_registry(first_run, registry):
    res, ref = first_run
    assert res.changed > 0
    assert ref.startswith(f"{registry['url']}/{REPOSITORY}:0.1.0-")
    assert registry["password"] not in res.output


def test_registry_has_the_tag_with_its_labels(first_run, registry, podman_env):
    _, ref = first_run
    out = skopeo_inspect(registry, ref, podman_env)
    assert out.returncode == 0, out.stderr
    labels = json.loads(out.stdout)["Labels"]
    tag_hash = ref.rsplit("-", 1)[1]
    assert labels["io.coderstack.content-hash"].startswith(tag_hash)
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["io.coderstack.code-server.version"] == "4.89.1"
    assert labels["io.coderstack.docker.source"] == "apt"
    assert labels["io.coderstack.base-image"] == "localhost/coderstack-base:bookworm"


def test_second_run_neither_builds_nor_pushes(first_run):
    from helpers.ansible_run import run_playbook

    t0 = time.monotonic()
    res = run_playbook(PLAYBOOK, extra_vars={"base_image_repository": REPOSITORY})
    print(f"\nno-change role run: {time.monotonic() - t0:.1f}s")
    assert res.rc == 0, res.output[-3000:]
    assert res.changed == 0, res.stdout[-3000:]
    assert "present in the registry, nothing to build" in flat(res.stdout)
    assert "Builder builds the image" not in res.stdout


def test_check_mode_reports_and_builds_nothing(first_run, registry, podman_env):
    from helpers.ansible_run import run_playbook

    res = run_playbook(
        PLAYBOOK, extra_vars={"base_image_repository": REPOSITORY, "base_image_version": "0.0.1-check"},
        args=["--check", "--diff"],
    )  # fmt: skip
    assert res.rc == 0, res.output[-3000:]
    assert res.changed == 1
    m = re.search(r"would build (\S+) with", flat(res.stdout))
    assert m, res.stdout[-2000:]
    assert skopeo_inspect(registry, m.group(1), podman_env).returncode != 0
    assert sh("podman", "image", "exists", m.group(1), env=podman_env, check=False).returncode != 0


def test_wrong_password_fails_clearly_and_pushes_nothing(first_run, registry, podman_env):
    from helpers.ansible_run import run_playbook

    res = run_playbook(
        PLAYBOOK,
        extra_vars={
            "base_image_repository": REPOSITORY,
            "base_image_version": "0.0.1-badpw",
            "base_image_registry_password": "not-the-password",
        },
    )
    assert res.rc != 0
    assert (
        "refused the credentials of user 'coderstack' (HTTP 401)" in res.stdout.replace("\n", " ").replace("''", "'")
        or "refused the credentials" in res.stdout
    )
    assert "not-the-password" not in res.output
    assert "Builder builds the image" not in res.stdout
    tags = sh(
        "skopeo", "list-tags", "--cert-dir", registry["cert_dir"],
        "--creds", f"{registry['user']}:{registry['password']}", f"docker://{registry['url']}/{REPOSITORY}",
        env=podman_env, timeout=60,
    )  # fmt: skip
    assert [t for t in json.loads(tags.stdout)["Tags"] if t.startswith("0.0.1-")] == []


def test_image_has_fish_dockerd_and_code_server(first_run, podman_env):
    _, ref = first_run
    out = sh(
        "podman", "run", "--rm", "--network", "none", "--entrypoint", "fish", ref, "-c",
        "fish --version; dockerd --version; code-server --version; echo shell=(getent passwd root | cut -d: -f7)",
        env=podman_env, timeout=300,
    )  # fmt: skip
    assert re.search(r"fish, version 3\.", out.stdout), out.stdout
    assert re.search(r"Docker version \d+\.\d+", out.stdout), out.stdout
    assert re.search(r"^4\.89\.1 \w+ with Code", out.stdout, re.M), out.stdout
    assert "shell=/usr/bin/fish" in out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bootstrap_starts_code_server_on_loopback_only(first_run, podman_env):
    """bootstrap.fish: project dirs, fish config, code-server on 127.0.0.1:9069 (Linuxbrew off by its variable).

    code-server runs without auth of its own, so it listens on the pod's loopback only: a process in the container
    gets its /healthz (the positive control: what Coder's agent does), the container's published port gets nothing.
    dockerd is switched off too: it needs a privileged container, which this test does not grant.
    """
    _, ref = first_run
    name = f"coderstack-image-test-{uuid.uuid4().hex[:6]}"
    port = _free_port()
    sh(
        "podman", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:9069",
        "-e", "CODERSTACK_LINUXBREW=0", "-e", "CODERSTACK_DOCKERD=0", ref,
        env=podman_env, timeout=120,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        inside = None
        while time.monotonic() < deadline:
            inside = sh(
                "podman", "exec", name, "curl", "-fsS", "--max-time", "3", "http://127.0.0.1:9069/healthz",
                env=podman_env, check=False,
            )  # fmt: skip
            if inside.returncode == 0:
                break
            time.sleep(1)
        logs = sh("podman", "logs", name, env=podman_env, check=False).stdout
        assert inside is not None and inside.returncode == 0, f"no /healthz answer inside ({inside}); log:\n{logs}"
        assert json.loads(inside.stdout).get("status") in ("alive", "expired"), inside.stdout
        assert "linuxbrew: skipped" in logs
        assert "starting code server on 127.0.0.1:9069" in logs
        # the door: the same server, through the container's own address (the published port), does not answer
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as resp:
                pytest.fail(f"code-server answered on the container's address: {resp.status} {resp.read()[:200]!r}")
        except OSError:
            pass
        files = sh("podman", "exec", name, "ls", "/root/projects", "/root/.config/fish/config.fish", env=podman_env)
        assert "config.fish" in files.stdout
    finally:
        sh("podman", "rm", "-f", "-t", "2", name, env=podman_env, check=False)


def test_non_root_variant_runs_as_uid_1000(first_run, registry, podman_env):
    """base_image_workspace_uid: 1000 -> user coder, code-server in its home, no dockerd (Ollama template)."""
    from helpers.ansible_run import run_playbook

    res = run_playbook(
        PLAYBOOK, extra_vars={"base_image_repository": REPOSITORY, "base_image_workspace_uid": 1000}, timeout=3600
    )
    assert res.rc == 0, res.output[-3000:]
    pushed = re.search(r"pushed (\S+:[\w.-]+)", flat(res.stdout))
    assert pushed and pushed.group(1) != first_run[1], res.stdout[-2000:]
    ref = pushed.group(1)
    labels = json.loads(skopeo_inspect(registry, ref, podman_env).stdout)["Labels"]
    assert labels["io.coderstack.workspace-uid"] == "1000"
    out = sh(
        "podman", "run", "--rm", "--network", "none", "--entrypoint", "fish", ref, "-c",
        "id -u; echo $HOME; stat -c %u /home/linuxbrew; code-server --version",
        env=podman_env, timeout=300,
    )  # fmt: skip
    assert out.stdout.splitlines()[:3] == ["1000", "/home/coder", "1000"], out.stdout
    assert re.search(r"^4\.89\.1 \w+ with Code", out.stdout, re.M), out.stdout
