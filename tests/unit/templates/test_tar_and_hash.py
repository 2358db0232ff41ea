"""The deterministic tar and the content hash that decide whether a template is uploaded again."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import time
from pathlib import Path

import pytest
from ansible_collections.coderstack.platform.plugins.module_utils import coder_templates as ct

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture()
def tpl(tmp_path):
    d = tmp_path / "tpl"
    (d / "modules" / "pod").mkdir(parents=True)
    (d / "main.tf").write_text('variable "namespace" {}\n')
    (d / "README.md").write_text("# tpl\n")
    (d / "modules" / "pod" / "pod.tf").write_text("# pod\n")
    (d / "run.sh").write_text("#!/bin/sh\n")
    (d / "run.sh").chmod(0o755)
    return d


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def test_same_content_same_bytes_whatever_the_mtimes_and_owners(tpl):
    first, manifest = ct.build_tar(tpl)
    later = time.time() + 3600
    for p in tpl.rglob("*"):
        os.utime(p, (later, later))
    second, _ = ct.build_tar(tpl)
    assert first == second
    assert manifest["main.tf"] == hashlib.sha256(b'variable "namespace" {}\n').hexdigest()


def test_members_sorted_with_fixed_metadata(tpl):
    data, _ = ct.build_tar(tpl)
    ms = members(data)
    names = [m.name for m in ms]
    assert names == sorted(names)
    assert names == ["README.md", "main.tf", "modules", "modules/pod", "modules/pod/pod.tf", "run.sh"]
    for m in ms:
        assert m.mtime == ct.TAR_MTIME and m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == ""
    modes = {m.name: m.mode for m in ms}
    assert modes["run.sh"] == 0o755 and modes["main.tf"] == 0o644 and modes["modules"] == 0o755


def test_terraform_working_files_are_not_packed(tpl):
    before, _ = ct.build_tar(tpl)
    (tpl / ".terraform" / "providers").mkdir(parents=True)
    (tpl / ".terraform" / "providers" / "x").write_text("binary")
    (tpl / "terraform.tfstate").write_text("{}")
    (tpl / ".git").mkdir()
    (tpl / ".git" / "HEAD").write_text("ref")
    (tpl / "main.tf.swp").write_text("swap")
    after, manifest = ct.build_tar(tpl)
    assert after == before
    assert sorted(manifest) == ["README.md", "main.tf", "modules/pod/pod.tf", "run.sh"]


def test_a_one_byte_change_changes_the_hash_and_names_the_file(tpl):
    data, before = ct.build_tar(tpl)
    (tpl / "README.md").write_text("# tpl!\n")
    data2, after = ct.build_tar(tpl)
    assert ct.content_hash(data, {}) != ct.content_hash(data2, {})
    assert ct.files_diff(before, after) == {"added": [], "removed": [], "modified": ["README.md"]}
    (tpl / "new.tf").write_text("")
    (tpl / "run.sh").unlink()
    _, after2 = ct.build_tar(tpl)
    assert ct.files_diff(after, after2) == {"added": ["new.tf"], "removed": ["run.sh"], "modified": []}


def test_mode_change_changes_the_bytes(tpl):
    data, _ = ct.build_tar(tpl)
    (tpl / "main.tf").chmod(0o755)
    assert ct.build_tar(tpl)[0] != data


def test_variables_take_part_in_the_hash_not_their_order(tpl):
    data, _ = ct.build_tar(tpl)
    a = ct.content_hash(data, {"namespace": "coder", "privileged": True})
    b = ct.content_hash(data, {"privileged": True, "namespace": "coder"})
    c = ct.content_hash(data, {"privileged": False, "namespace": "coder"})
    assert a == b != c
    assert re.fullmatch(r"[0-9a-f]{64}", a)


def test_variable_values_are_terraform_strings():
    vals = ct.variable_values({"b": True, "n": 4, "l": ["x", "y"], "m": {"k": 1}, "s": "text", "z": None})
    assert vals == [
        {"name": "b", "value": "true"},
        {"name": "l", "value": '["x","y"]'},
        {"name": "m", "value": '{"k":1}'},
        {"name": "n", "value": "4"},
        {"name": "s", "value": "text"},
        {"name": "z", "value": ""},
    ]


def test_manifest_of_an_uploaded_tar_matches(tpl):
    data, manifest = ct.build_tar(tpl)
    assert ct.tar_manifest(data) == manifest


def test_hash_travels_in_the_version_message():
    h = "a" * 64
    msg = "release notes\n\n" + ct.MESSAGE_MARK + h
    assert ct.hash_from_message(msg) == h
    assert ct.hash_from_message("edited by hand") is None
    assert ct.hash_from_message(None) is None


def test_version_names_are_valid_for_coder():
    name = ct.version_name("0123456789abcdef" * 4, now=0)
    assert name == "0123456789ab-19700101000000"
    # codersdk.TemplateVersionNameValid
    assert re.fullmatch(r"[a-zA-Z0-9]+(?:[_.-]{1}[a-zA-Z0-9]+)*", name) and len(name) <= 64


def test_no_tf_file_is_refused(tmp_path):
    (tmp_path / "README.md").write_text("x")
    with pytest.raises(ct.TemplateError, match=r"no \.tf file"):
        ct.build_tar(tmp_path)
    with pytest.raises(ct.TemplateError, match="does not exist"):
        ct.build_tar(tmp_path / "missing")


def test_settings_only_managed_ones_compared():
    wanted = ct.wanted_settings({"display_name": "X", "default_ttl": 3600, "icon": None})
    assert wanted == {"display_name": "X", "default_ttl_ms": 3600000}
    tpl = {"display_name": "X", "default_ttl_ms": 0, "icon": "/other.png"}
    assert ct.settings_changes(tpl, wanted) == {"default_ttl_ms": (0, 3600000)}


def test_log_tail_keeps_errors_and_the_end():
    logs = [{"output": f"line {i}", "log_level": "info"} for i in range(100)]
    logs.insert(3, {"output": "Error: Reference to undeclared input variable", "log_level": "error"})
    tail = ct.log_tail(logs, lines=5)
    assert tail[0].startswith("Error:") and tail[-1] == "line 99" and len(tail) == 6


def test_shipped_templates_pack_deterministically():
    for name in ("kubernetes-dind", "kubernetes-ollama"):
        a, manifest = ct.build_tar(REPO / "templates" / name)
        b, _ = ct.build_tar(REPO / "templates" / name)
        assert a == b and "main.tf" in manifest and "README.md" in manifest


def test_terraform_errors_are_summarised():
    lines = [
        "Initializing provider plugins...",
        "Error: Reference to undeclared input variable",
        'on main.tf line 3, in resource "coder_metadata" "oops":',
        "An input variable with the name no_such_variable has not been declared.",
        "Error: Reference to undeclared input variable",
        'on main.tf line 3, in resource "coder_metadata" "oops":',
    ]
    assert ct.terraform_errors(lines) == [
        'Error: Reference to undeclared input variable on main.tf line 3, in resource "coder_metadata" "oops":'
    ]
