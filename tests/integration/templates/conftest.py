"""Fixtures of the template tests: a throwaway Coder with provisioners (see tpl_helpers.py)."""

from __future__ import annotations

import pytest
from helpers.coder_server import need_coder_parts
from tpl_helpers import CoderWithProvisioners, need_terraform, run_module


@pytest.fixture(scope="session")
def coder(tmp_path_factory):
    """One throwaway Coder (first user + token, 2 provisioner daemons running the mirror's terraform)."""
    need_coder_parts()
    need_terraform()
    srv = CoderWithProvisioners(tmp_path_factory.mktemp("coder-tpl")).start()
    yield srv
    srv.stop()


@pytest.fixture()
def push(coder):
    """push(name, directory, **options) -> module result, against the throwaway server."""

    def _push(name, directory, check=False, **options):
        args = {"coder_url": coder.url, "coder_token": coder.token, "name": name}
        if directory is not None:
            args["directory"] = str(directory)
        args.update(options)
        return run_module(args, check=check)

    return _push
