"""coder_token: token kept in a Kubernetes Secret of the testbed API server, reused while it works."""

from __future__ import annotations

import base64

from coder_it import ADMIN


def token_args(srv, ns, kube_cfg, **kw):
    a = {
        "coder_url": srv.url,
        "login_email": ADMIN["email"],
        "login_password": ADMIN["password"],
        "username": "admin",
        "token_name": "it-automation",
        "secret_name": "coder-admin-token",
        "secret_namespace": ns,
        "kubeconfig": str(kube_cfg),
    }
    a.update(kw)
    return a


def read_secret(kube, ns):
    from kubernetes import client

    s = client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", ns)
    return s.metadata.resource_version, base64.b64decode(s.data["token"]).decode()


def test_token_created_reused_and_replaced_when_revoked(coder_server, admin_client, testbed, kube, namespace, module):
    a = token_args(coder_server, namespace, testbed.kubeconfig)

    res = module("coder_token", a, check=True)
    assert res["changed"] is True
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", namespace)
        raise AssertionError("check mode created the Secret")
    except ApiException as e:
        assert e.status == 404
    assert admin_client.get_token("admin", "it-automation") is None, "check mode created a token"

    res = module("coder_token", a)
    assert res["changed"] is True and res["reused"] is False
    rv1, tok1 = read_secret(kube, namespace)
    assert tok1 not in str(res), "the token must not be returned"
    assert res["token_id"] == tok1.split("-")[0]
    assert coder_server.client().check_token(tok1)["username"] == "admin"

    res = module("coder_token", a)
    assert res["changed"] is False and res["reused"] is True
    assert res["api_calls"] == {"GET": 1}
    rv2, tok2 = read_secret(kube, namespace)
    assert (rv2, tok2) == (rv1, tok1), "a working token must be reused without touching the Secret"

    admin_client.delete_token("admin", tok1.split("-")[0])  # revoke it behind the module's back
    assert coder_server.client().check_token(tok1) is None
    res = module("coder_token", a)
    assert res["changed"] is True and res["reused"] is False
    rv3, tok3 = read_secret(kube, namespace)
    assert tok3 != tok1 and rv3 != rv1
    assert coder_server.client().check_token(tok3)["username"] == "admin"

    # an existing token of an owner can mint the token too (no password), and force rotates
    res = module("coder_token", dict(a, login_email=None, login_password=None, coder_token=tok3, force=True))
    assert res["changed"] is True, res.get("msg")
    _, tok4 = read_secret(kube, namespace)
    assert tok4 != tok3 and coder_server.client().check_token(tok3) is None  # same name: old one deleted


def test_wrong_password_fails_clearly(coder_server, testbed, namespace, module):
    a = token_args(coder_server, namespace, testbed.kubeconfig, login_password="Wrong-Password-987654")
    res = module("coder_token", a)
    assert res.get("failed") is True
    assert "logging in as admin@it.example.com to create a token" in res["msg"]
    assert "HTTP 401" in res["msg"] and "check the credentials" in res["msg"]
