"""CoderClient against a tiny local HTTP server on 127.0.0.1: error text, retries, backoff bound, call counting."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible.module_utils.coder_client import CoderClient, CoderError


class Script:
    """Answers queued per path: (status, body dict|str|None, headers)."""

    def __init__(self):
        self.answers: dict[str, list] = {}
        self.seen: list[tuple[str, str, dict, bytes]] = []

    def add(self, path, status, body=None, headers=None, times=1):
        self.answers.setdefault(path, []).extend([(status, body, headers or {})] * times)


@pytest.fixture()
def server():
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            self.server_script.seen.append((self.command, self.path, dict(self.headers), body))
            path = self.path.split("?", 1)[0]
            queue = self.server_script.answers.get(path) or [(404, {"message": "Route not found."}, {})]
            status, payload, headers = queue.pop(0) if len(queue) > 1 else queue[0]
            raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode() if payload else b""
            self.send_response(status)
            ctype = "text/plain" if isinstance(payload, str) else "application/json"
            self.send_header("Content-Type", ctype)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

    Handler.server_script = script
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    script.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield script
    httpd.shutdown()
    httpd.server_close()


def client(url, **kw):
    sleeps = []
    c = CoderClient(url, token="tok-secret", sleep=sleeps.append, **kw)
    return c, sleeps


def test_token_header_and_json_body(server):
    server.add("/api/v2/users", 201, {"id": "u1", "username": "alice"})
    c, _ = client(server.url)
    res = c.request("POST", "/api/v2/users", json={"username": "alice"}, expected=(201,))
    assert res["username"] == "alice"
    method, _path, headers, body = server.seen[0]
    assert method == "POST"
    assert headers["Coder-Session-Token"] == "tok-secret"
    assert json.loads(body) == {"username": "alice"}
    assert c.calls == {"POST": 1}


def test_error_message_detail_and_validations(server):
    server.add(
        "/api/v2/users",
        400,
        {
            "message": "Validation failed.",
            "detail": "bad input",
            "validations": [{"field": "email", "detail": 'Validation failed for tag "email"'}],
        },
    )
    c, sleeps = client(server.url)
    with pytest.raises(CoderError) as ei:
        c.request("POST", "/api/v2/users", json={}, expected=(201,))
    text = str(ei.value)
    assert text == (
        "POST /api/v2/users returned HTTP 400: Validation failed (bad input); invalid fields: email: "
        'Validation failed for tag "email"'
    )
    assert ei.value.status == 400
    assert sleeps == []  # 4xx is not retried
    assert c.calls_total == 1


def test_non_json_error_body(server):
    server.add("/api/v2/buildinfo", 418, "teapot here")
    c, _ = client(server.url, retries=0)
    with pytest.raises(CoderError, match=r"GET /api/v2/buildinfo returned HTTP 418: teapot here"):
        c.buildinfo()


def test_retries_429_then_success_honours_retry_after(server):
    server.add("/api/v2/users/me", 429, {"message": "rate limited"}, {"Retry-After": "2"}, times=2)
    server.add("/api/v2/users/me", 200, {"username": "admin"})
    c, sleeps = client(server.url)
    assert c.me()["username"] == "admin"
    assert sleeps == [2.0, 2.0]
    assert c.calls == {"GET": 3}
    assert [s for _, _, s in c.call_log] == [429, 429, 200]


def test_retries_are_bounded_with_exponential_backoff(server):
    server.add("/api/v2/users/me", 503, {"message": "unavailable"})
    c, sleeps = client(server.url, retries=3, backoff=0.5, backoff_max=1.5)
    with pytest.raises(CoderError, match="HTTP 503: unavailable"):
        c.me()
    assert sleeps == [0.5, 1.0, 1.5]
    assert c.calls == {"GET": 4}


def test_500_retried_for_get_not_for_post(server):
    server.add("/api/v2/users", 500, {"message": "Internal error."})
    c, sleeps = client(server.url, retries=2)
    with pytest.raises(CoderError):
        c.request("POST", "/api/v2/users", json={}, expected=(201,))
    assert c.calls == {"POST": 1} and sleeps == []
    with pytest.raises(CoderError):
        c.request("GET", "/api/v2/users")
    assert c.calls == {"POST": 1, "GET": 3}


def test_connection_error_retried_then_readable():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    c, sleeps = client(f"http://127.0.0.1:{port}", retries=2)
    with pytest.raises(CoderError) as ei:
        c.buildinfo()
    assert ei.value.status is None
    assert f"cannot reach http://127.0.0.1:{port}" in str(ei.value)
    assert len(sleeps) == 2 and c.calls == {"GET": 3}


def test_pagination_and_not_found(server):
    server.add("/api/v2/users", 200, {"users": [{"username": f"u{i}"} for i in range(2)], "count": 3})
    server.add("/api/v2/users", 200, {"users": [{"username": "u2"}], "count": 3})
    server.add("/api/v2/users/ghost", 400, {"message": '"user" must be an existing uuid or username.'})
    c, _ = client(server.url)
    assert [u["username"] for u in c.list_users(page_size=2)] == ["u0", "u1", "u2"]
    assert "offset=2" in server.seen[1][1] and "limit=2" in server.seen[1][1]
    assert c.get_user("ghost") is None
    assert c.calls == {"GET": 3}


def test_first_user_and_token_check(server):
    server.add("/api/v2/users/first", 404, {"message": "The initial user has not been created!"})
    server.add("/api/v2/users/me", 401, {"message": "API key expired."})
    c, _ = client(server.url)
    assert c.has_first_user() is False
    assert "Coder-Session-Token" not in server.seen[0][2]  # unauthenticated endpoint
    assert c.check_token("dead-token") is None
    assert server.seen[1][2]["Coder-Session-Token"] == "dead-token"


def test_tls_options_and_url_validation(tmp_path):
    with pytest.raises(ValueError, match="http:// or https://"):
        CoderClient("file:///etc/passwd")
    insecure = CoderClient("https://127.0.0.1:1", validate_certs=False)
    assert insecure.url == "https://127.0.0.1:1"
    with pytest.raises(OSError):  # a CA file that does not exist is an error at construction
        CoderClient("https://127.0.0.1:1", ca_path=str(tmp_path / "missing.pem"))
