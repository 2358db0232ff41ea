"""coder_token: token kept in a Kubernetes Secret of the testbed API server, reused while it works."""

from __future__ import annotations

import base64
import re
import time
import uuid
from datetime import datetime

from coder_it import ADMIN


def parse_time(text: str) -> float:
    """Epoch seconds of Coder's RFC 3339 times (nanoseconds, Z)."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def token_args(srv, ns, kube_cfg, **kw):
    a = {
        "coder_url": srv.url,
        "login_email": ADMIN["email"],
        "login_password": ADMIN["password"],
        "username": "admin",
        "token_name": "it-automation",
        "token_secret": "coder-admin-token",
        "token_namespace": ns,
        "kubeconfig": str(kube_cfg),
    }
    a.update(kw)
    return a


def get_token(client, user, name):
    """The token's metadata (never its secret) by name, or None."""
    from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError

    try:
        return client.request("GET", f"/api/v2/users/{user}/keys/tokens/{name}")
    except CoderError as e:
        if e.status in (404, 400):
            return None
        raise


def read_secret(kube, ns):
    from kubernetes import client

    s = client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", ns)
    return s.metadata.resource_version, base64.b64decode(s.data["token"]).decode()


def test_token_created_reused_and_replaced_when_revoked(coder_server, admin_client, testbed, kube, namespace, module):
    a = token_args(coder_server, namespace, testbed.kubeconfig)

    res = module("coderstack.platform.coder_token", a, check=True)
    assert res["changed"] is True
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", namespace)
        raise AssertionError("check mode created the Secret")
    except ApiException as e:
        assert e.status == 404
    assert get_token(admin_client, "admin", "it-automation") is None, "check mode created a token"

    res = module("coderstack.platform.coder_token", a)
    assert res["changed"] is True and res["reused"] is False
    rv1, tok1 = read_secret(kube, namespace)
    assert tok1 not in str(res), "the token must not be returned"
    assert res["token_id"] == tok1.split("-")[0]
    assert coder_server.client().check_token(tok1)["username"] == "admin"

    res = module("coderstack.platform.coder_token", a)
    assert res["changed"] is False and res["reused"] is True
    assert res["api_calls"] == {"GET": 2}  # whose token is it (users/me), when does it expire (keys/{id})
    rv2, tok2 = read_secret(kube, namespace)
    assert (rv2, tok2) == (rv1, tok1), "a working token must be reused without touching the Secret"

    admin_client.delete_token("admin", tok1.split("-")[0])  # revoke it behind the module's back
    assert coder_server.client().check_token(tok1) is None
    res = module("coderstack.platform.coder_token", a)
    assert res["changed"] is True and res["reused"] is False
    rv3, tok3 = read_secret(kube, namespace)
    assert tok3 != tok1 and rv3 != rv1
    assert coder_server.client().check_token(tok3)["username"] == "admin"

    # an existing token of an owner can mint the token too (no password), and force rotates create-then-delete:
    # the name is taken by the old token until it is deleted, so the new one carries a timestamp
    res = module(
        "coderstack.platform.coder_token", dict(a, login_email=None, login_password=None, coder_token=tok3, force=True)
    )
    assert res["changed"] is True, res.get("msg")
    _, tok4 = read_secret(kube, namespace)
    assert tok4 != tok3 and coder_server.client().check_token(tok3) is None  # old one deleted after the write
    assert res["token_name"].startswith("it-automation-") and res["deleted_token_ids"] == [tok3.split("-")[0]]
    res = module("coderstack.platform.coder_token", dict(a, force=True))
    _, _tok5 = read_secret(kube, namespace)
    assert res["token_name"] == "it-automation" and res["deleted_token_ids"] == [tok4.split("-")[0]]
    names = [t["token_name"] for t in admin_client.list_tokens("admin") if t["token_name"].startswith("it-automation")]
    assert names == ["it-automation"]


def test_wrong_password_fails_clearly(coder_server, testbed, namespace, module):
    a = token_args(coder_server, namespace, testbed.kubeconfig, login_password="Wrong-Password-987654")
    res = module("coderstack.platform.coder_token", a)
    assert res.get("failed") is True
    assert "logging in as admin@it.example.com to create a token" in res["msg"]
    assert "HTTP 401" in res["msg"] and "check the credentials" in res["msg"]


def make_secret(kube, ns, name, token, immutable=False):
    from kubernetes import client

    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, namespace=ns),
        type="Opaque",
        data={"token": base64.b64encode(token.encode()).decode()},
        immutable=immutable,
    )
    client.CoreV1Api(kube).create_namespaced_secret(ns, body)


def test_failed_secret_write_leaves_the_old_token_working(coder_server, admin_client, testbed, kube, namespace, module):
    """Rotation is create-then-delete: when the new token cannot be stored, the Secret's token still works."""
    name = "it-immutable-" + uuid.uuid4().hex[:6]
    old = admin_client.create_token("admin", name, 86400)
    make_secret(kube, namespace, "coder-admin-token", old, immutable=True)  # every write is refused
    sessions = coder_server.sessions("admin")

    res = module(
        "coderstack.platform.coder_token",
        token_args(coder_server, namespace, testbed.kubeconfig, token_name=name, force=True),
    )
    assert res.get("failed") is True
    assert f"storing the new token in Secret {namespace}/coder-admin-token key token failed" in res["msg"]
    assert "the Secret still holds the previous token" in res["msg"]
    assert read_secret(kube, namespace)[1] == old
    assert coder_server.client().check_token(old)["username"] == "admin", "the stored token was deleted"
    left = [t["id"] for t in admin_client.list_tokens("admin") if t["token_name"].startswith(name)]
    assert left == [old.split("-")[0]], "the new token must be deleted again"
    assert coder_server.sessions("admin") == sessions, "the login session was left behind"
    assert old not in str(res) and ADMIN["password"] not in str(res)


def test_no_session_is_left_behind(coder_server, testbed, namespace, module):
    """Every login the module makes is logged out again: after a failure (unknown user) and after a success."""
    before = coder_server.sessions("admin")
    res = module(
        "coderstack.platform.coder_token",
        token_args(coder_server, namespace, testbed.kubeconfig, username="ghost-user"),
    )
    assert res.get("failed") is True and "user ghost-user does not exist in Coder" in res["msg"]
    assert coder_server.sessions("admin") == before, "a failed run left its login session behind"
    res = module(
        "coderstack.platform.coder_token",
        token_args(coder_server, namespace, testbed.kubeconfig, token_name="it-sessions"),
    )
    assert res["changed"] is True
    assert coder_server.sessions("admin") == before, "a successful run left its login session behind"


def test_lifetime_zero_is_the_servers_maximum(coder_server, admin_client, testbed, kube, namespace, module):
    """The default lifetime_days (0) asks for the owner's maximum, 168h since Coder v2.30 (no warning, no guess)."""
    maximum = admin_client.max_token_lifetime_seconds("admin")
    assert maximum == 168 * 3600  # CODER_MAX_ADMIN_TOKEN_LIFETIME default (v2.30 to v2.36)
    res = module(
        "coderstack.platform.coder_token",
        token_args(coder_server, namespace, testbed.kubeconfig, token_name="it-lifetime"),
    )
    assert res["changed"] is True and res["lifetime_seconds"] == maximum
    assert not res.get("warnings"), res.get("warnings")
    token = get_token(admin_client, "admin", "it-lifetime")
    assert abs(parse_time(token["expires_at"]) - (time.time() + maximum)) < 600

    res = module(
        "coderstack.platform.coder_token",
        token_args(coder_server, namespace, testbed.kubeconfig, token_name="it-lifetime", lifetime_days=30, force=True),
    )
    assert res["lifetime_seconds"] == maximum and "exceeds the server's maximum" in " ".join(res["warnings"])


def test_token_expiring_soon_is_reminted(coder_server, admin_client, testbed, kube, namespace, module):
    a = token_args(coder_server, namespace, testbed.kubeconfig, token_name="it-expiring")
    assert module("coderstack.platform.coder_token", a)["changed"] is True
    _, tok = read_secret(kube, namespace)
    assert module("coderstack.platform.coder_token", a)["changed"] is False
    # make the stored token a 1h token with 20 minutes left (as if time had passed; Coder renews a used token
    # only when more than an hour of its lifetime is gone, so it stays this way)
    coder_server.sql(
        "UPDATE api_keys SET lifetime_seconds = 3600, expires_at = now() + interval '20 minutes' WHERE id = %s",
        (tok.split("-")[0],),
    )
    res = module("coderstack.platform.coder_token", a)
    assert res["changed"] is True and "expires soon" in res["reason"]
    _, tok2 = read_secret(kube, namespace)
    assert tok2 != tok and coder_server.client().check_token(tok) is None
    assert coder_server.client().check_token(tok2)["username"] == "admin"


def test_other_modules_read_the_token_from_the_secret(coder_server, testbed, kube, namespace, module):
    """What roles do: coder_token keeps the token in the Secret, every other module of the group takes the same
    options (module_defaults of group/coderstack.platform.coder) and reads its token there."""
    group = {
        "coder_url": coder_server.url,
        "ca_path": "",
        "validate_certs": True,
        "token_secret": "coder-admin-token",
        "token_namespace": namespace,
        "kubeconfig": str(testbed.kubeconfig),
        "context": "",
    }
    res = module("coderstack.platform.coder_info", dict(group, gather=["users"]))
    assert res.get("failed") is True
    assert res["msg"] == (
        f"the Coder API token Secret {namespace}/coder-admin-token (key token) does not exist: run "
        "playbooks/coder_admin.yml first (site.yml does), or pass coder_token"
    )
    res = module(
        "coderstack.platform.coder_token",
        dict(group, login_email=ADMIN["email"], login_password=ADMIN["password"], token_name="it-group"),
    )
    assert res["changed"] is True, res.get("msg")
    _, tok = read_secret(kube, namespace)
    res = module("coderstack.platform.coder_info", dict(group, gather=["users"]))
    assert "admin" in [u["username"] for u in res["users"]], res.get("msg")
    assert tok not in str(res)
    res = module(
        "coderstack.platform.coder_first_user",
        dict(group, username="admin", email=ADMIN["email"], password=ADMIN["password"], name=ADMIN["name"]),
    )
    assert res["changed"] is False and res["existed"] is True, res.get("msg")
    # a token in the Secret that Coder rejects: the 401 names the Secret
    coder_server.client(tok).delete_token("admin", tok.split("-")[0])
    res = module("coderstack.platform.coder_users", dict(group, users=[{"username": "admin"}]))
    assert res.get("failed") is True and "HTTP 401" in res["msg"]
    assert f"the token in Secret {namespace}/coder-admin-token (key token) is expired or revoked" in res["msg"]
    assert tok not in str(res)
