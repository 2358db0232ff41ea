"""Both templates pass `terraform init` (offline, from the provider mirror) + `terraform validate`."""

from __future__ import annotations

import subprocess

from tpl_helpers import REPO, STATE, need_terraform


def test_templates_validate_against_the_mirrored_providers():
    need_terraform()
    proc = subprocess.run(
        ["bash", str(REPO / "templates" / "validate.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(STATE), "CODERSTACK_TESTBED_DIR": str(STATE)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: kubernetes-dind" in proc.stdout and "ok: kubernetes-ollama" in proc.stdout
    # nothing was left in the tree (it would change the templates' content hash)
    assert not list((REPO / "templates").rglob(".terraform*"))


def _validate(directory, timeout: int) -> subprocess.CompletedProcess:
    """templates/validate.sh on DIRECTORY with a minimal environment (only the testbed's mirror config)."""
    return subprocess.run(
        ["bash", str(REPO / "templates" / "validate.sh"), str(directory)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(STATE), "CODERSTACK_TESTBED_DIR": str(STATE)},
    )


def test_validate_catches_a_broken_template(tmp_path):
    need_terraform()
    (tmp_path / "main.tf").write_text(
        'terraform {\n  required_providers {\n    coder = { source = "coder/coder" }\n  }\n}\n'
        'resource "coder_agent" "main" {\n  os   = var.nope\n  arch = "amd64"\n}\n'
    )
    proc = _validate(tmp_path, timeout=300)
    assert proc.returncode != 0
    assert "undeclared input variable" in proc.stdout + proc.stderr


def test_a_provider_outside_the_mirror_is_never_downloaded(tmp_path):
    """The CLI config has no `direct` block: init fails at once instead of reaching for a registry."""
    need_terraform()
    (tmp_path / "main.tf").write_text(
        'terraform {\n  required_providers {\n    random = { source = "hashicorp/random" }\n  }\n}\n'
    )
    proc = _validate(tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "hashicorp/random" in proc.stderr and "terraform-mirror" in proc.stderr
