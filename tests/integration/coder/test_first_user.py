"""coder_first_user against a real, empty Coder server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from coder_it import ADMIN


def args(srv, **kw):
    a = {"coder_url": srv.url, **{k: ADMIN[k] for k in ("username", "email", "password", "name")}}
    a.update(kw)
    return a


def test_first_user_created_once_then_unchanged(fresh_coder, module):
    c = fresh_coder.client()
    assert c.has_first_user() is False

    res = module("coderstack.platform.coder_first_user", args(fresh_coder), check=True)
    assert res["changed"] is True and res["created"] is True
    assert c.has_first_user() is False, "check mode must not create the user"

    res = module("coderstack.platform.coder_first_user", args(fresh_coder))
    assert res["changed"] is True and res["created"] is True and res["login_verified"] is True
    assert res["diff"]["before"] == {}
    assert res["diff"]["after"] == {
        "username": "admin",
        "email": ADMIN["email"],
        "name": "IT Admin",
        "roles": ["owner"],
    }
    assert ADMIN["password"] not in str(res)
    assert c.has_first_user() is True
    me = c.me(token=c.login(ADMIN["email"], ADMIN["password"]))
    assert me["username"] == "admin" and [r["name"] for r in me["roles"]] == ["owner"]

    res = module("coderstack.platform.coder_first_user", args(fresh_coder))
    assert res["changed"] is False and res["existed"] is True and res["login_verified"] is True
    assert res["user"]["username"] == "admin"
    assert res["api_calls"] == {"GET": 3, "POST": 2}  # buildinfo, first-user check, login, me, logout
    assert res["version"].startswith("v2.")


def test_wrong_password_is_a_clear_failure(fresh_coder, module):
    module("coderstack.platform.coder_first_user", args(fresh_coder, verify_login=False))
    res = module("coderstack.platform.coder_first_user", args(fresh_coder, password="Not-The-Password-123456"))
    assert res.get("failed") is True
    assert "logging in as admin@it.example.com" in res["msg"]
    assert "HTTP 401" in res["msg"] and "Secret coder-admin" in res["msg"]
    assert "Not-The-Password" not in res["msg"]


@pytest.fixture(params=["html-404", "json-everywhere"])
def not_coder(request):
    """Something that is not Coder at coder_url (a web server's 404 page, or an API that answers {} to anything);
    it records every request it gets."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            seen.append((self.command, self.path, self.rfile.read(length) if length else b""))
            if request.param == "html-404":
                status, ctype, body = 404, "text/html; charset=utf-8", b"<html><h1>404 Not Found</h1></html>"
            else:
                status, ctype, body = 200, "application/json", b"{}"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen, request.param
    httpd.shutdown()
    httpd.server_close()


def test_wrong_url_never_receives_the_credentials(not_coder, module):
    """A coder_url that is not Coder fails before anything is posted: no email or password leaves the host."""
    url, seen, kind = not_coder
    res = module(
        "coderstack.platform.coder_first_user",
        {"coder_url": url, **{k: ADMIN[k] for k in ("username", "email", "password")}},
    )
    assert res.get("failed") is True
    status, ctype = ("404", "text/html") if kind == "html-404" else ("200", "application/json")
    assert f"{url} is not a Coder deployment" in res["msg"]
    assert f"answered HTTP {status} ({ctype}" in res["msg"] and "check coder_url" in res["msg"]
    assert [(m, p) for m, p, _ in seen] == [("GET", "/api/v2/buildinfo")], "only the Coder check may be sent"
    sent = json.dumps([(m, p, b.decode()) for m, p, b in seen])
    assert ADMIN["password"] not in sent and ADMIN["email"] not in sent


def test_through_the_api_servers_service_proxy(converged, testbed, module):
    """kube_service: the module reaches the testbed's Coder through the API server with the kubeconfig's
    credentials (how the coder role creates the owner before Coder is exposed); coder_url is not used then."""
    base = {
        "coder_url": "https://unused.invalid",
        "kubeconfig": str(testbed.kubeconfig),
        **{k: ADMIN[k] for k in ("username", "email", "password")},
        "verify_login": False,
    }
    res = module("coderstack.platform.coder_first_user", {**base, "kube_service": "coder/coder:http"}, check=True)
    assert res.get("failed") is not True, res
    assert res["existed"] is True and res["changed"] is False and res["version"].startswith("v2.")
    # control: without kube_service the same call goes to coder_url, which does not resolve
    res = module("coderstack.platform.coder_first_user", base, check=True)
    assert res.get("failed") is True and "unused.invalid" in res["msg"], res
    # a Service that is not there: the API server's answer, named (Kubernetes 1.37 answers 503 "no endpoints available
    # for service", earlier releases 404 "not found")
    res = module("coderstack.platform.coder_first_user", {**base, "kube_service": "coder/nope:http"}, check=True)
    assert res.get("failed") is True and "nope" in res["msg"], res
    assert "HTTP 404" in res["msg"] or "HTTP 503" in res["msg"], res
    res = module("coderstack.platform.coder_first_user", {**base, "kube_service": "coder-nope"}, check=True)
    assert res.get("failed") is True and "kube_service must be <namespace>/<service>:<port" in res["msg"], res
