"""The collection coderstack.platform builds, installs into an empty collections path and documents itself from there.

Nothing here reads the checkout's plugins at run time: Ansible runs from a scratch directory with an empty
ansible.cfg and ANSIBLE_COLLECTIONS_PATH naming only the install dir (tests/helpers/collection.py).
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from ansible_collections.coderstack.platform.plugins.filter import image_hash
from helpers.collection import FQCN, build, install, isolated_env, module_names, role_names, run, tool
from helpers.parts import REPO

# Development material galaxy.yml's build_ignore keeps out of the artifact (the roles need image/ and templates/).
NOT_SHIPPED = (".venv/", ".venv-ansible-test/", ".testbed/", "testbed/", "collections/", "molecule/", "bench/", ".git/")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    return install(built, tmp_path_factory.mktemp("collections"))


@pytest.fixture(scope="module")
def env(installed, tmp_path_factory):
    """(cwd, env) for running Ansible against the installed copy only."""
    cwd = tmp_path_factory.mktemp("cwd")
    return cwd, isolated_env(installed.parents[2], cwd)


def doc_json(env, kind: str, names: list[str]) -> dict:
    cwd, environ = env
    proc = run([tool("ansible-doc"), "-t", kind, "--json", *[f"{FQCN}.{n}" for n in names]], cwd=cwd, env=environ)
    assert proc.returncode == 0, f"ansible-doc -t {kind} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_artifact_holds_the_collection_and_no_development_material(built):
    with tarfile.open(built) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("MANIFEST.json").read())
    info = manifest["collection_info"]
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert (info["namespace"], info["name"], info["version"]) == ("coderstack", "platform", galaxy["version"])
    assert info["license"] == ["GPL-3.0-or-later"]
    # every role says the same license as the collection
    role_licenses = {
        meta.parent.parent.name: yaml.safe_load(meta.read_text())["galaxy_info"]["license"]
        for meta in sorted(REPO.glob("roles/*/meta/main.yml"))
    }
    assert role_licenses and set(role_licenses.values()) == {"GPL-3.0-or-later"}, role_licenses
    for needed in ("meta/runtime.yml", "COPYING", "README.md", "playbooks/site.yml", "image/Containerfile"):
        assert needed in names, f"{needed} is missing from {built.name}"
    assert any(n.startswith("templates/kubernetes-dind/") for n in names)
    shipped_dev = sorted(n for n in names if n.startswith(NOT_SHIPPED) or "__pycache__" in n)
    assert shipped_dev == [], f"development files in the artifact: {shipped_dev[:20]}"
    assert built.stat().st_size < 2_000_000, f"{built.name} is {built.stat().st_size} bytes"


def test_every_module_is_documented_from_the_install(installed, env):
    names = module_names()
    assert "coder_user" in names and "k8s_wait_report" in names
    docs = doc_json(env, "module", names)
    for name in names:
        entry = docs.get(f"{FQCN}.{name}")
        assert entry and entry["doc"]["module"] == name, f"no documentation of {FQCN}.{name}: {entry}"
        assert Path(entry["doc"]["filename"]).is_relative_to(installed), entry["doc"]["filename"]
        assert entry["examples"] and entry["return"], f"{name}: EXAMPLES or RETURN missing"
    # the doc fragment resolved by FQCN from the installed copy
    assert "coder_url" in docs[f"{FQCN}.coder_user"]["doc"]["options"]


def test_every_role_is_documented_from_the_install(installed, env):
    names = role_names()
    assert len(names) == len(list((REPO / "roles").iterdir())), "every role has meta/argument_specs.yml"
    docs = doc_json(env, "role", names)
    for name in names:
        entry = docs.get(f"{FQCN}.{name}")
        assert entry and entry["entry_points"]["main"]["short_description"], f"{FQCN}.{name}: {entry}"
        assert Path(entry["path"]).resolve() == installed.resolve(), entry["path"]


def test_filter_is_documented_from_the_install(installed, env):
    docs = doc_json(env, "filter", ["image_content_hash"])
    doc = docs[f"{FQCN}.image_content_hash"]["doc"]
    assert Path(doc["filename"]).is_relative_to(installed)


def test_module_defaults_group_reaches_every_coder_module(installed, env):
    """`group/coderstack.platform.coder` (meta/runtime.yml) gives the Coder modules their connection options."""
    runtime = yaml.safe_load((installed / "meta" / "runtime.yml").read_text())
    assert sorted(runtime["action_groups"]["coder"]) == sorted(n for n in module_names() if n.startswith("coder_"))
    cwd, environ = env
    playbook = cwd / "group.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "The coder group's defaults apply",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "module_defaults": {f"group/{FQCN}.coder": {"coder_url": "http://127.0.0.1:9", "timeout": 2}},
                    "tasks": [
                        {
                            "name": "coder_info reads the URL from module_defaults",
                            f"{FQCN}.coder_info": {"gather": ["buildinfo"]},
                            "register": "info",
                            "ignore_errors": True,
                        },
                        {
                            "name": "The module tried the URL given in module_defaults",
                            "ansible.builtin.assert": {"that": ["info is failed", "'127.0.0.1:9' in info.msg"]},
                        },
                    ],
                }
            ]
        )
    )
    proc = run(
        [tool("ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
        cwd=cwd,
        env={**environ, "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("directory", ["image", "templates"])
def test_installed_build_contexts_hash_like_the_checkout(installed, directory):
    """The roles find image/ and templates/ next to roles/ (role_path/../../image): the installed copy of each hashes
    like the checkout's (same files, modes and content), so an installed collection tags the same image."""
    exclude = yaml.safe_load((REPO / "roles/base_image/defaults/main.yml").read_text())["base_image_hash_exclude"]
    checkout = image_hash.image_content_hash(str(REPO / directory), {}, exclude)
    assert image_hash.image_content_hash(str(installed / directory), {}, exclude) == checkout
