"""The installed collection runs the platform: `ansible-playbook coderstack.platform.site` on the testbed.

The collection is built from the work tree and installed into an empty collections path
(tests/helpers/collection.py); ANSIBLE_COLLECTIONS_PATH names only that path, so every role, module, filter and
doc fragment comes from the installed copy: the checkout's collections/ link is not on the path, and the
playbook (playbooks/site.yml inside the install) has no collections/ dir next to it. The inventory is the
repo's inventories/testbed. The run is in check mode on the converged platform (the `converged` fixture runs
the repo's site.yml once), so it changes nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers.ansible_run import run_playbook
from helpers.collection import FQCN, build, install, role_names, run, tool
from helpers.parts import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tarball = build(tmp_path_factory.mktemp("dist"))
    return install(tarball, tmp_path_factory.mktemp("collections"))


@pytest.fixture(scope="module")
def only_installed(installed) -> dict:
    """Environment for run_playbook (cwd: the repo, ansible.cfg: the repo's) resolving coderstack.platform from
    the install only: ANSIBLE_COLLECTIONS_PATH replaces ansible.cfg's collections_path."""
    return {"ANSIBLE_COLLECTIONS_PATH": str(installed.parents[2])}


def test_roles_resolve_to_the_installed_copy(installed, only_installed):
    """With the environment the playbook run uses, ansible finds the roles in the install, not in the checkout."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **only_installed}
    names = [f"{FQCN}.{r}" for r in role_names()]
    proc = run([tool("ansible-doc"), "-t", "role", "--json", *names], cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    for name in names:
        assert Path(docs[name]["path"]).resolve() == installed.resolve(), (name, docs[name]["path"])


def test_site_from_the_installed_collection_in_check_mode(converged, installed, only_installed):
    res = run_playbook(f"{FQCN}.site", args=["--check"], env=only_installed, timeout=1800)
    assert res.rc == 0 and res.failed == 0, f"{FQCN}.site --check failed:\n{res.output[-4000:]}"
    assert res.recap, res.output[-2000:]
    # every component's role ran from the collection (task headers carry the role's FQCN)
    for role in ("preflight", "ingress", "storage", "postgres", "coder", "coder_admin", "coder_users", "base_image"):
        assert f"TASK [{FQCN}.{role} : " in res.stdout, f"no task of {FQCN}.{role} in the run"
    # the installed copy does what the checkout does: the checkout's site.yml in check mode has the same recap
    # (same tasks ok/changed/skipped; a difference means the artifact lacks or alters something the roles use,
    # e.g. a file of image/ that changes the image's content hash)
    checkout = run_playbook("site.yml", args=["--check"], timeout=1800)
    assert checkout.rc == 0, checkout.output[-4000:]
    assert res.recap == checkout.recap, f"installed: {res.recap}\ncheckout: {checkout.recap}"
