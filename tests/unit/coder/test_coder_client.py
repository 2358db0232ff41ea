"""CoderClient against a tiny local HTTP server on 127.0.0.1: error text, retries, backoff bound, call counting."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderClient, CoderError


class Script:
    """Answers queued per path: (status, body dict|str|None, headers)."""

    def __init__(self):
        self.answers: dict[str, list] = {}
        self.seen: list[tuple[str, str, dict, bytes]] = []

    def add(self, path, status, body=None, headers=None, times=1, delay=0.0):
        """Queue an answer; ``delay`` seconds of silence before it (to make the client time out)."""
        self.answers.setdefault(path, []).extend([(status, body, headers or {}, delay)] * times)

    def count(self, method, path):
        return sum(1 for m, p, _h, _b in self.seen if m == method and p.split("?", 1)[0] == path)


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
            queue = self.server_script.answers.get(path) or [(404, {"message": "Route not found."}, {}, 0.0)]
            status, payload, headers, delay = queue.pop(0) if len(queue) > 1 else queue[0]
            if delay:
                time.sleep(delay)
            raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode() if payload else b""
            self.send_response(status)
            ctype = "text/plain" if isinstance(payload, str) else "application/json"
            self.send_header("Content-Type", ctype)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

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


def test_extra_headers_are_asked_for_each_request(server):
    """The service proxy's credentials (kube.ServiceProxy.headers): fetched again for every request, so a refreshed
    bearer token is used; the Coder token travels beside them."""
    server.add("/api/v2/buildinfo", 200, {"version": "v2.30.0"}, times=2)
    tokens = iter(["Bearer one", "Bearer two"])
    c, _ = client(server.url, extra_headers=lambda: {"authorization": next(tokens)})
    c.request("GET", "/api/v2/buildinfo")
    c.request("GET", "/api/v2/buildinfo")
    assert [h["Authorization"] for _m, _p, h, _b in server.seen] == ["Bearer one", "Bearer two"]
    assert all(h["Coder-Session-Token"] == "tok-secret" for _m, _p, h, _b in server.seen)


def test_rate_limit_bypass_travels_with_the_clients_own_token_only(server):
    """bypass_ratelimit: the client's own (the owner's) token carries X-Coder-Bypass-Ratelimit; a call made with
    another token or none (a user's key check, a login) never does; without the option no call does."""
    server.add("/api/v2/buildinfo", 200, {"version": "v2.30.0"}, times=4)
    c, _ = client(server.url, bypass_ratelimit=True)
    c.request("GET", "/api/v2/buildinfo")
    c.request("GET", "/api/v2/buildinfo", token="someone-elses")
    c.request("GET", "/api/v2/buildinfo", token=None)
    plain, _ = client(server.url)
    plain.request("GET", "/api/v2/buildinfo")
    bypass = [h.get("X-Coder-Bypass-Ratelimit") for _m, _p, h, _b in server.seen]
    assert bypass == ["true", None, None, None]
    assert [h.get("Coder-Session-Token") for _m, _p, h, _b in server.seen] == [
        "tok-secret",
        "someone-elses",
        None,
        "tok-secret",
    ]


def test_a_proxys_404_while_coder_restarts_is_retried_for_reads_only(server):
    """Behind an ingress, a restarting Coder answers 503 (no ready endpoint), then the controller's own 404 (route
    dropped), then Coder again: a GET rides it out; Coder's own JSON 404 and a 404 without an outage before it end at
    once, and a POST is never resent."""
    server.add("/api/v2/users", 503, "no available server")
    server.add("/api/v2/users", 404, "404 page not found")
    server.add("/api/v2/users", 200, {"users": [], "count": 0})
    c, sleeps = client(server.url)
    assert c.request("GET", "/api/v2/users") == {"users": [], "count": 0}
    assert server.count("GET", "/api/v2/users") == 3 and len(sleeps) == 2

    server.add("/api/v2/templates", 503, "no available server")
    server.add("/api/v2/templates", 404, {"message": "Route not found."})
    c, _ = client(server.url)
    with pytest.raises(CoderError) as e:
        c.request("GET", "/api/v2/templates")
    assert e.value.status == 404 and server.count("GET", "/api/v2/templates") == 2

    server.add("/api/v2/files", 404, "404 page not found")
    c, _ = client(server.url)
    with pytest.raises(CoderError):
        c.request("GET", "/api/v2/files")
    assert server.count("GET", "/api/v2/files") == 1

    server.add("/api/v2/organizations", 503, "no available server")
    server.add("/api/v2/organizations", 404, "404 page not found")
    c, _ = client(server.url)
    with pytest.raises(CoderError):
        c.request("POST", "/api/v2/organizations", json={"name": "x"}, expected=(201,))
    assert server.count("POST", "/api/v2/organizations") == 1


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


def closed_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_connection_error_retried_then_readable():
    port = closed_port()
    c, sleeps = client(f"http://127.0.0.1:{port}", retries=2)
    with pytest.raises(CoderError) as ei:
        c.buildinfo()
    assert ei.value.status is None
    assert f"cannot reach http://127.0.0.1:{port}" in str(ei.value)
    assert len(sleeps) == 2 and c.calls == {"GET": 3}


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize("status", [502, 503, 504, 500])
def test_post_and_patch_answered_5xx_are_sent_once(server, method, status):
    """A 5xx may come after the server acted (a 504 from a proxy while Coder created the user): never replay."""
    server.add("/api/v2/users", status, {"message": "Gateway Timeout."})
    c, sleeps = client(server.url, retries=4)
    with pytest.raises(CoderError) as ei:
        c.request(method, "/api/v2/users", json={"username": "alice"}, expected=(201,))
    assert server.count(method, "/api/v2/users") == 1
    assert c.calls == {method: 1} and sleeps == []
    text = str(ei.value)
    assert f"{method} /api/v2/users returned HTTP {status}: Gateway Timeout" in text
    assert f"not retried: a {method} is never sent twice once it may have reached the server" in text


def test_get_answered_503_then_200_succeeds_with_two_calls(server):
    server.add("/api/v2/users/me", 503, {"message": "unavailable"})
    server.add("/api/v2/users/me", 200, {"username": "admin"})
    c, sleeps = client(server.url)
    assert c.me()["username"] == "admin"
    assert server.count("GET", "/api/v2/users/me") == 2
    assert c.calls == {"GET": 2} and len(sleeps) == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_idempotent_writes_retried_on_504(server, method):
    server.add("/api/v2/users/alice/roles", 504, {"message": "Gateway Timeout."})
    server.add("/api/v2/users/alice/roles", 200, {"username": "alice"})
    c, _ = client(server.url)
    assert c.request(method, "/api/v2/users/alice/roles", json={"roles": []})["username"] == "alice"
    assert server.count(method, "/api/v2/users/alice/roles") == 2


def test_post_timeout_is_not_retried(server):
    """No answer in time: the POST may be in the server's hands; it is not sent again."""
    server.add("/api/v2/users", 201, {"id": "u1"}, delay=1.0)
    c, sleeps = client(server.url, timeout=0.3)
    with pytest.raises(CoderError) as ei:
        c.request("POST", "/api/v2/users", json={"username": "alice"}, expected=(201,))
    time.sleep(0.8)  # let the slow answer finish before counting
    assert server.count("POST", "/api/v2/users") == 1 and sleeps == []
    assert ei.value.status is None
    assert "no answer within 0.3s" in str(ei.value) and "not retried" in str(ei.value)


def test_get_timeout_is_retried(server):
    server.add("/api/v2/users/me", 200, {"username": "slow"}, delay=1.0)
    server.add("/api/v2/users/me", 200, {"username": "admin"})
    c, sleeps = client(server.url, timeout=0.3)
    assert c.me()["username"] == "admin"
    assert len(sleeps) == 1 and c.calls == {"GET": 2}


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_post_refused_connection_is_retried(method):
    """Connection refused happens before a byte is sent: resending a POST is safe."""
    port = closed_port()
    c, sleeps = client(f"http://127.0.0.1:{port}", retries=2)
    with pytest.raises(CoderError) as ei:
        c.request(method, "/api/v2/users", json={}, expected=(201,))
    assert c.calls == {method: 3} and len(sleeps) == 2
    assert "cannot reach" in str(ei.value) and "not retried" not in str(ei.value)


def test_post_429_is_retried(server):
    """The rate limiter refuses before the handler runs: a POST answered 429 was not handled."""
    server.add("/api/v2/users/login", 429, {"message": "rate limited"}, {"Retry-After": "1"})
    server.add("/api/v2/users/login", 201, {"session_token": "s"})
    c, sleeps = client(server.url)
    assert c.login("a@example.com", "pw") == "s"
    assert server.count("POST", "/api/v2/users/login") == 2 and sleeps == [1.0]


def test_buildinfo_probe_names_what_answered(server):
    server.add("/api/v2/buildinfo", 404, "<html>Not Found</html>", {"Server": "nginx"})
    c, _ = client(server.url)
    with pytest.raises(CoderError) as ei:
        c.coder_buildinfo()
    text = str(ei.value)
    assert text.startswith(f"{server.url} is not a Coder deployment: GET /api/v2/buildinfo answered HTTP 404")
    assert "(text/plain)" in text and "check coder_url" in text
    server.answers["/api/v2/buildinfo"] = [(200, {"hello": "world"}, {}, 0.0)]  # JSON, but not Coder's
    with pytest.raises(CoderError, match="answered HTTP 200 \\(application/json\\)"):
        c.coder_buildinfo()
    server.answers["/api/v2/buildinfo"] = [(200, {"version": "v2.30.0"}, {}, 0.0)]
    assert c.coder_buildinfo()["version"] == "v2.30.0"


def test_url_with_credentials_is_refused():
    with pytest.raises(ValueError, match="must not contain a user or password"):
        CoderClient("https://admin:hunter2@coder.example.com")


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


def test_429_without_a_header_waits_out_a_one_minute_window(server):
    """Coder limits some endpoints per minute (12 file uploads): without Retry-After the waits grow from
    rate_limit_backoff and together cover the window (5+10+20+40 s), not the 7.5 s of the 5xx backoff."""
    server.add("/api/v2/files", 429, {"message": "You've been rate limited"}, times=4)
    server.add("/api/v2/files", 201, {"hash": "abc"})
    c, sleeps = client(server.url)
    c.request("POST", "/api/v2/files", data=b"x", headers={"Content-Type": "application/x-tar"}, expected=(201,))
    assert sleeps == [5.0, 10.0, 20.0, 40.0]
    assert sum(sleeps) > 60
    assert c.calls == {"POST": 5}


def test_429_retry_after_is_honoured_beyond_the_5xx_cap(server):
    server.add("/api/v2/files", 429, {"message": "rate limited"}, {"Retry-After": "42"})
    server.add("/api/v2/files", 201, {"hash": "abc"})
    c, sleeps = client(server.url)
    c.request("POST", "/api/v2/files", data=b"x", headers={"Content-Type": "application/x-tar"}, expected=(201,))
    assert sleeps == [42.0]  # backoff_max (8 s) caps 5xx waits only; rate_limit_wait_max (65 s) caps this one


def test_429_reset_time_header_is_used_when_there_is_no_retry_after(server):
    import time

    server.add("/api/v2/files", 429, {"message": "rate limited"}, {"X-Ratelimit-Reset": str(int(time.time()) + 30)})
    server.add("/api/v2/files", 201, {"hash": "abc"})
    c, sleeps = client(server.url)
    c.request("POST", "/api/v2/files", data=b"x", headers={"Content-Type": "application/x-tar"}, expected=(201,))
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 32, sleeps
