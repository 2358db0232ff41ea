"""Build the collection coderstack.platform from the work tree and install it into an empty collections path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers.parts import REPO

NAMESPACE, NAME = "coderstack", "platform"
FQCN = f"{NAMESPACE}.{NAME}"


def tool(name: str) -> str:
    """The Ansible CLI next to the Python running the tests (the venv's), else the one on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def isolated_env(collections_path: Path, cwd: Path) -> dict:
    """Environment in which Ansible sees no collection of this repo except the one in collections_path.

    ANSIBLE_CONFIG names an empty file (the repo's ansible.cfg, whose collections_path finds the checkout, is not
    read) and ANSIBLE_COLLECTIONS_PATH holds only the install dir; the `ansible` package's collections in
    site-packages stay visible, as on any machine.
    """
    cfg = cwd / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(cfg),
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_LOCAL_TEMP=str(cwd / "tmp"),
        ANSIBLE_HOME=str(cwd / "home"),
    )
    env.pop("PYTHONPATH", None)
    return env


def run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def build(dest: Path) -> Path:
    """`ansible-galaxy collection build` of the work tree (uncommitted changes included) into dest; the tarball."""
    dest.mkdir(parents=True, exist_ok=True)
    proc = run([tool("ansible-galaxy"), "collection", "build", str(REPO), "--output-path", str(dest)], cwd=dest)
    assert proc.returncode == 0, f"collection build failed:\n{proc.stdout}\n{proc.stderr}"
    tars = sorted(dest.glob(f"{NAMESPACE}-{NAME}-*.tar.gz"))
    assert len(tars) == 1, f"expected one artifact in {dest}: {tars}"
    return tars[0]


def install(tarball: Path, dest: Path) -> Path:
    """Install the artifact into the empty collections path dest (no dependencies: they ship with `ansible`)."""
    dest.mkdir(parents=True, exist_ok=True)
    env = isolated_env(dest, tarball.parent)
    proc = run(
        [tool("ansible-galaxy"), "collection", "install", str(tarball), "-p", str(dest), "--no-deps", "--offline"],
        cwd=tarball.parent,
        env=env,
    )
    assert proc.returncode == 0, f"collection install failed:\n{proc.stdout}\n{proc.stderr}"
    root = dest / "ansible_collections" / NAMESPACE / NAME
    assert (root / "MANIFEST.json").is_file(), f"no MANIFEST.json under {root}:\n{proc.stdout}"
    return root


def module_names() -> list[str]:
    return sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def role_names() -> list[str]:
    return sorted(p.parent.parent.name for p in (REPO / "roles").glob("*/meta/argument_specs.yml"))
