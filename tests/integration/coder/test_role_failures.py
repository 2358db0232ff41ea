"""Issue 12 items 2 and 3, through the roles (playbooks/coder_admin.yml, users.yml, templates.yml, teardown.yml)
against throwaway REAL Coder servers and a throwaway namespace, at -vvv:

- every Coder module task of the roles, forced to fail (a URL that is not Coder, a password Coder does not accept,
  a revoked token, a user Coder refuses), shows the module's own message, and no secret appears in the output;
- a refused run leaves no partial state: no Secret is written for an admin or user Coder did not accept (or the one
  written is repaired by the corrected re-run), and the objects before and after are the same."""

from __future__ import annotations

import base64
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from coder_it import ADMIN

WRONG_TOKEN = "ZZwrongtok-" + uuid.uuid4().hex[:22]  # shaped like a Coder token, unknown to the server
KNOWN_PASSWORD = "Known-User-Pass-" + uuid.uuid4().hex[:12]
WRONG_ADMIN_PASSWORD = "Wrong-Admin-Pass-" + uuid.uuid4().hex[:12]
HIDDEN = "the output has been hidden due to the fact that 'no_log: true'"


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _secrets(kube, ns) -> dict[str, str]:
    from kubernetes import client

    return {
        s.metadata.name: s.metadata.resource_version for s in client.CoreV1Api(kube).list_namespaced_secret(ns).items
    }


def _secret_data(kube, ns, name) -> tuple[dict, dict]:
    from kubernetes import client

    s = client.CoreV1Api(kube).read_namespaced_secret(name, ns)
    return (s.metadata.annotations or {}), {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}


def _put_secret(kube, ns, name, data: dict, labels=None, annotations=None):
    from kubernetes import client

    meta = client.V1ObjectMeta(name=name, labels=labels, annotations=annotations)
    client.CoreV1Api(kube).create_namespaced_secret(
        ns, client.V1Secret(metadata=meta, data={k: _b64(v) for k, v in data.items()})
    )


def _failed_task_output(res) -> str:
    """The output of the run from the first failed task on (the failure message Ansible printed)."""
    out = res.output
    i = out.find("fatal: [")
    return out[i:] if i >= 0 else out


def assert_visible_and_clean(res, *phrases, secrets=()):
    assert res.rc != 0, res.output[-3000:]
    failure = " ".join(_failed_task_output(res).split())  # the YAML callback wraps long messages
    assert HIDDEN not in failure, f"the failure is hidden by no_log:\n{failure[:3000]}"
    for phrase in phrases:
        assert phrase in failure, f"{phrase!r} not in the failure:\n{failure[:4000]}"
    for secret in secrets:
        assert secret not in res.output, "a secret is in the -vvv output"
        tail = secret.split("-", 1)[-1]
        assert tail not in res.output, "part of a secret is in the -vvv output"


@pytest.fixture()
def not_coder():
    """An HTTP server that answers /healthz like Coder does, but is not Coder (404 HTML for the API)."""

    class Handler(BaseHTTPRequestHandler):
        posts = []

        def do_GET(self):
            if self.path == "/healthz":
                body, ctype, status = b"OK", "text/plain", 200
            else:
                body, ctype, status = b"<html>not found</html>", "text/html", 404
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            Handler.posts.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", Handler.posts
    srv.shutdown()


def test_admin_against_a_url_that_is_not_coder_fails_visibly_before_any_secret(not_coder, kube, namespace, playbook):
    """coder_first_user: the message names the URL and what answered; no Secret written, no password posted."""
    url, posts = not_coder
    ev = {"coderstack_coder_url": url, "coderstack_namespace": namespace, "coder_admin_wait_timeout": 10}
    res = playbook("playbooks/coder_admin.yml", extra_vars=ev, args=["-vvv"])
    assert_visible_and_clean(res, f"{url} is not a Coder deployment", "HTTP 404")
    assert _secrets(kube, namespace) == {}, "a Secret was written for a Coder that is not there"
    assert posts == []


def test_weak_admin_password_is_refused_before_anything_is_stored(fresh_coder, kube, namespace, playbook):
    """A password length Coder would refuse fails naming the variable; no Secret, no first user."""
    ev = {"coderstack_coder_url": fresh_coder.url, "coderstack_namespace": namespace, "coder_admin_password_length": 8}
    res = playbook("playbooks/coder_admin.yml", extra_vars=ev, args=["-vvv"])
    assert_visible_and_clean(res, "coder_admin_password_length=8 must be 12..64")
    assert _secrets(kube, namespace) == {}
    assert fresh_coder.client().has_first_user() is False


def test_pending_admin_secret_is_repaired_by_the_corrected_run(fresh_coder, kube, namespace, playbook):
    """A Secret a refused run left pending (another username, a password Coder refused) is regenerated while Coder
    has no first user; the owner is then created with the configured name and the Secret is marked accepted."""
    _put_secret(
        kube,
        namespace,
        "coder-admin",
        {"username": "old_name", "email": "old@it.example.com", "password": "password"},
        labels={"app.kubernetes.io/managed-by": "coderstack"},
        annotations={"coderstack.io/first-user": "pending"},
    )
    ev = {
        "coderstack_coder_url": fresh_coder.url,
        "coderstack_namespace": namespace,
        "coder_admin_email": "owner@it.example.com",
    }
    res = playbook("playbooks/coder_admin.yml", extra_vars=ev)
    assert res.rc == 0, res.output[-4000:]
    assert "was made for another admin" not in res.output
    ann, data = _secret_data(kube, namespace, "coder-admin")
    assert ann.get("coderstack.io/first-user") == "accepted"
    assert (data["username"], data["email"]) == ("admin", "owner@it.example.com")
    assert data["password"] != "password" and data["password"] not in res.output
    session = fresh_coder.client().login("owner@it.example.com", data["password"])
    assert fresh_coder.client(session).check_token(session)["username"] == "admin"
    # converged: again changes nothing
    res = playbook("playbooks/coder_admin.yml", extra_vars=ev)
    assert res.rc == 0 and res.changed == 0, res.output[-3000:]


def test_admin_password_coder_rejects_shows_coder_reason(coder_server, kube, namespace, playbook):
    """coder_token: the stored password does not log in (HTTP 401): the reason shows, the password does not, and no
    token Secret is written."""
    _put_secret(
        kube,
        namespace,
        "coder-admin",
        {**{k: ADMIN[k] for k in ("username", "email")}, "password": WRONG_ADMIN_PASSWORD},
    )
    before = _secrets(kube, namespace)
    ev = {
        "coderstack_coder_url": coder_server.url,
        "coderstack_namespace": namespace,
        "coder_admin_email": ADMIN["email"],
    }
    res = playbook("playbooks/coder_admin.yml", extra_vars=ev, args=["-vvv"])
    assert_visible_and_clean(
        res,
        f"the email/password of {ADMIN['email']} do not log in to Coder",
        "HTTP 401",
        secrets=[WRONG_ADMIN_PASSWORD],
    )
    assert _secrets(kube, namespace) == before


def test_revoked_token_shows_the_401_in_users_templates_and_teardown(coder_server, kube, namespace, playbook):
    """coder_users, coder_template and coder_info with a token Coder rejects: each run says HTTP 401 and what to do;
    the token is never printed."""
    _put_secret(kube, namespace, "coder-admin-token", {"token": WRONG_TOKEN})
    ev = {"coderstack_coder_url": coder_server.url, "coderstack_namespace": namespace}
    users = [{"username": "tok" + uuid.uuid4().hex[:6], "email": f"tok{uuid.uuid4().hex[:6]}@it.example.com"}]
    res = playbook("playbooks/users.yml", extra_vars={**ev, "coder_users": users}, args=["-vvv"])
    assert_visible_and_clean(res, "listing Coder users", "HTTP 401", secrets=[WRONG_TOKEN])
    assert [n for n in _secrets(kube, namespace) if n.startswith("coder-user-")] == []

    res = playbook(
        "playbooks/templates.yml",
        extra_vars={
            **ev,
            "coder_templates_agent_probe": False,
            "coderstack_workspace_image": "example.invalid/ws:1",
        },
        args=["-vvv"],
    )
    # the role lists the organization's templates once before it syncs them: that first call is refused
    assert_visible_and_clean(res, f"listing templates of {coder_server.url}", "HTTP 401", secrets=[WRONG_TOKEN])

    res = playbook(
        "playbooks/teardown.yml",
        extra_vars={**ev, "teardown_templates": True, "coderstack_coder_url": coder_server.url},
        args=["-vvv"],
    )
    assert_visible_and_clean(res, f"listing templates of {coder_server.url}", "HTTP 401", secrets=[WRONG_TOKEN])


def test_user_coder_refuses_is_visible_and_leaves_no_secret(coder_server, admin_client, kube, namespace, playbook):
    """A new user whose email another user has: Coder's refusal shows; the password Secret this run made for the
    user is deleted again, an older one is kept untouched, Coder's users are as before; the corrected run works."""
    _put_secret(kube, namespace, "coder-admin-token", {"token": coder_server.admin_token})
    old = "kept" + uuid.uuid4().hex[:6]
    _put_secret(
        kube,
        namespace,
        f"coder-user-{old}",
        {"username": old, "password": KNOWN_PASSWORD},
        labels={"app.kubernetes.io/managed-by": "coderstack", "coderstack.io/coder-user": old},
    )
    new = "dup" + uuid.uuid4().hex[:6]
    users_before = sorted(u["username"] for u in admin_client.list_users())
    secrets_before = _secrets(kube, namespace)
    ev = {"coderstack_coder_url": coder_server.url, "coderstack_namespace": namespace}
    refused = [
        {"username": old, "email": ADMIN["email"]},  # its Secret exists: it is the one whose password could leak
        {"username": new, "email": ADMIN["email"]},
    ]
    res = playbook("playbooks/users.yml", extra_vars={**ev, "coder_users": refused}, args=["-vvv"])
    assert_visible_and_clean(
        res, f"reconciling Coder user {old}", "HTTP 409", secrets=[KNOWN_PASSWORD, coder_server.admin_token]
    )
    assert _secrets(kube, namespace) == secrets_before, "the refused run left or changed Secrets"
    assert sorted(u["username"] for u in admin_client.list_users()) == users_before

    fixed = [{"username": new, "email": f"{new}@it.example.com"}]
    res = playbook("playbooks/users.yml", extra_vars={**ev, "coder_users": fixed})
    assert res.rc == 0, res.output[-4000:]
    _, data = _secret_data(kube, namespace, f"coder-user-{new}")
    assert admin_client.get_user(new)["email"] == f"{new}@it.example.com"
    assert coder_server.client().login(f"{new}@it.example.com", data["password"])
