"""coder_module: every Coder module takes the same connection options and resolves its API token the same way
(coder_token, else the Kubernetes Secret token_secret, else a failure naming both), masked in every message."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from ansible.module_utils import basic
from ansible_collections.coderstack.platform.plugins.module_utils import coder_module
from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.coder_module import (
    coder_argument_spec,
    coder_client,
    fail,
    resolve_token,
    secret_free,
)
from ansible_collections.coderstack.platform.plugins.module_utils.kube import KubeError

STORED = "StOrEd0123-" + "s3" * 11  # shaped like a Coder token
URL = "http://127.0.0.1:9"


class FakeSecrets:
    """kube.Secrets stand-in: {(namespace, name): {key: value}}; records how it was built and what was read."""

    store: dict = {}
    built: list = []
    reads: list = []
    error: Exception | None = None

    def __init__(self, kubeconfig=None, context=None):
        FakeSecrets.built.append((kubeconfig, context))

    def read(self, namespace, name):
        FakeSecrets.reads.append((namespace, name))
        if FakeSecrets.error:
            raise FakeSecrets.error
        data = FakeSecrets.store.get((namespace, name))
        return ({"metadata": {"name": name}}, dict(data)) if data is not None else (None, {})


@pytest.fixture(autouse=True)
def fake_secrets(monkeypatch):
    FakeSecrets.store, FakeSecrets.built, FakeSecrets.reads, FakeSecrets.error = {}, [], [], None
    monkeypatch.setattr(coder_module, "Secrets", FakeSecrets)
    return FakeSecrets


def run(args, body, **spec):
    """Build a secret_free AnsibleModule with the connection spec from ARGS, run BODY(module); the JSON printed."""
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
    basic._ANSIBLE_PROFILE = "legacy"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module = secret_free(basic.AnsibleModule(argument_spec=coder_argument_spec(**spec), supports_check_mode=True))
        body(module)
    return json.loads(out.getvalue())


def token_of(module):
    token = resolve_token(module, what="reconciling Coder user alice")
    module.exit_json(changed=False, token_is_stored=token == STORED, token_given=token == "given-token")


SECRET_ARGS = {"coder_url": URL, "token_secret": "coder-admin-token", "token_namespace": "coder"}


def test_coder_token_given_wins_and_no_secret_is_read():
    res = run(dict(SECRET_ARGS, coder_token="given-token"), token_of)
    assert res["token_given"] is True and FakeSecrets.reads == []


def test_token_read_from_the_secret_with_kubeconfig_and_context():
    FakeSecrets.store[("coder", "coder-admin-token")] = {"token": STORED}
    args = dict(SECRET_ARGS, kubeconfig="/k/config", context="testbed")
    res = run(args, token_of)
    assert res["token_is_stored"] is True
    assert FakeSecrets.reads == [("coder", "coder-admin-token")] and FakeSecrets.built == [("/k/config", "testbed")]


def test_other_key_and_empty_strings_mean_unset():
    FakeSecrets.store[("coder", "coder-admin-token")] = {"admin": STORED}
    res = run(dict(SECRET_ARGS, token_key="admin", context="", ca_path="", kubeconfig=""), token_of)
    assert res["token_is_stored"] is True
    assert FakeSecrets.built == [(None, None)]


def test_missing_secret_or_key_says_to_run_coder_admin():
    expected = (
        "the Coder API token Secret coder/coder-admin-token (key token) does not exist: run "
        "playbooks/coder_admin.yml first (site.yml does), or pass coder_token"
    )
    res = run(SECRET_ARGS, token_of)
    assert res["failed"] is True and res["msg"] == expected
    FakeSecrets.store[("coder", "coder-admin-token")] = {"other": "x"}
    res = run(SECRET_ARGS, token_of)
    assert res["msg"] == expected


def test_neither_token_nor_secret_names_both_options():
    res = run({"coder_url": URL}, token_of)
    assert res["failed"] is True
    assert res["msg"].startswith("reconciling Coder user alice needs a Coder API token")
    assert "coder_token" in res["msg"] and "token_secret" in res["msg"]


def test_token_secret_needs_its_namespace():
    res = run({"coder_url": URL, "token_secret": "coder-admin-token"}, token_of)
    assert res["failed"] is True and "token_secret coder-admin-token needs token_namespace" in res["msg"]


def test_kubernetes_errors_name_the_secret():
    FakeSecrets.error = KubeError("cannot load the Kubernetes configuration (kubeconfig /nope): no such file")
    res = run(SECRET_ARGS, token_of)
    assert res["failed"] is True
    assert res["msg"].startswith("reading the Coder API token from Secret coder/coder-admin-token failed")
    assert "/nope" in res["msg"]


def test_token_not_needed_is_none():
    def body(module):
        module.exit_json(changed=False, token=resolve_token(module, required=False))

    assert run({"coder_url": URL}, body)["token"] is None


def test_stored_token_is_masked_and_a_401_names_the_secret():
    FakeSecrets.store[("coder", "coder-admin-token")] = {"token": STORED}

    def body(module):
        client = coder_client(module, what="listing users")
        assert client.token == STORED
        fail(module, f"listing users with {STORED}", CoderError("GET", "/api/v2/users", 401, "unauthorized"))

    res = run(SECRET_ARGS, body)
    assert STORED not in json.dumps(res)
    assert "the token in Secret coder/coder-admin-token (key token) is expired or revoked" in res["msg"]
    assert "playbooks/coder_admin.yml" in res["msg"] and "coder_token" in res["msg"]


def test_a_given_token_keeps_the_coder_token_hint():
    def body(module):
        coder_client(module)
        fail(module, "listing users", CoderError("GET", "/api/v2/users", 401, "unauthorized"))

    res = run({"coder_url": URL, "coder_token": "given-token"}, body)
    assert "the coder_token is missing, expired or revoked" in res["msg"]


def test_module_defaults_of_the_group_are_accepted_by_every_spec():
    """What roles put in module_defaults for group/coderstack.platform.coder."""
    defaults = dict(
        SECRET_ARGS, ca_path="", validate_certs=True, kubeconfig="/k/config", context="", coder_token="given-token"
    )

    def body(module):
        client = coder_client(module)
        module.exit_json(changed=False, url=client.url)

    assert run(defaults, body)["url"] == URL
