"""keep_token (the logic of coder_token): reuse, create-then-delete rotation, session always ended, lifetime.

A fake Coder and a fake Secret store record every step in one ordered list, so the tests assert the order a
user's Secret and Coder go through (the real thing runs in tests/integration/coder/test_token.py).
"""

from __future__ import annotations

import time

import pytest
from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.coder_tokens import (
    TokenError,
    keep_token,
    parse_time,
    renew_before,
    rotation_name,
    token_family,
    token_lifetime,
)

NOW = 1_750_000_000.0
DAY = 86400
ADMIN = {"id": "u-admin", "username": "admin"}


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".123456789Z"


class FakeCoder:
    """Tokens are ``<id>-<secret>``; ``keys`` maps id -> metadata; ``sessions`` are live login sessions."""

    def __init__(self, events, max_lifetime=7 * DAY):
        self.events = events
        self.token = None
        self.keys = {}
        self.sessions = set()
        self.max_lifetime = max_lifetime
        self.fail_on = {}  # method name -> CoderError
        self.n = 0
        self.calls = {}

    def _maybe_fail(self, name):
        if name in self.fail_on:
            raise self.fail_on[name]

    def add_key(self, name, expires_in=7 * DAY, lifetime=7 * DAY):
        self.n += 1
        kid = f"key{self.n:07d}"
        self.keys[kid] = {
            "id": kid,
            "token_name": name,
            "expires_at": iso(NOW + expires_in),
            "lifetime_seconds": lifetime,
            "user_id": ADMIN["id"],
        }
        return f"{kid}-{'s' * 22}"

    def _valid(self, token):
        return token in self.sessions or token.split("-", 1)[0] in self.keys

    def check_token(self, token):
        self.events.append(("check", token.split("-", 1)[0]))
        return dict(ADMIN) if self._valid(token) else None

    def get_key(self, user, key_id, token=None):
        return dict(self.keys[key_id])

    def login(self, email, password):
        self.events.append(("login", email))
        if password != "right":
            raise CoderError("POST", "/api/v2/users/login", 401, "Incorrect email or password.")
        self.sessions.add("sess000001-" + "p" * 22)
        return "sess000001-" + "p" * 22

    def logout(self, session):
        self.events.append(("logout", session))
        self.sessions.discard(session)

    def get_user(self, user):
        self._maybe_fail("get_user")
        assert self.token and self._valid(self.token), "called without a valid token"
        return dict(ADMIN) if user in ("me", "admin", ADMIN["id"]) else None

    def max_token_lifetime_seconds(self, user):
        return self.max_lifetime

    def list_tokens(self, user):
        return [dict(k) for k in self.keys.values()]

    def create_token(self, user, name, lifetime_seconds=0):
        self._maybe_fail("create_token")
        assert name not in {k["token_name"] for k in self.keys.values()}, "Coder answers 409 for a taken name"
        token = self.add_key(name, expires_in=lifetime_seconds, lifetime=lifetime_seconds)
        self.events.append(("create", name, lifetime_seconds))
        return token

    def delete_token(self, user, key_id):
        assert self.token and self._valid(self.token), "deleting with a deleted token"
        self._maybe_fail("delete_token")
        self.events.append(("delete", key_id))
        del self.keys[key_id]


class FakeStore:
    def __init__(self, events, token=None, fail_write=False):
        self.events = events
        self.token = token
        self.fail_write = fail_write
        self.rv = 1

    def read(self, ns, name):
        if self.token is None:
            return None, {}
        return {"metadata": {"resourceVersion": str(self.rv)}}, {"token": self.token}

    def write(self, ns, name, values, existing=None, labels=None):
        if self.fail_write:
            self.events.append(("write-failed", values["token"].split("-", 1)[0]))
            raise RuntimeError("secrets 'coder-admin-token' is forbidden: field is immutable")
        self.token = values["token"]
        self.rv += 1
        self.events.append(("write", self.token.split("-", 1)[0]))
        return {"metadata": {"resourceVersion": str(self.rv)}}


def params(**kw):
    p = {
        "token_namespace": "coder",
        "token_secret": "coder-admin-token",
        "token_key": "token",
        "token_name": "coderstack",
        "username": "admin",
        "login_email": "admin@example.com",
        "login_password": "right",
        "coder_token": None,
        "lifetime_days": 0,
        "force": False,
        "return_token": False,
    }
    p.update(kw)
    return p


def setup(stored_expires_in=7 * DAY, lifetime=7 * DAY, fail_write=False, **kw):
    events = []
    coder = FakeCoder(events, **kw)
    old = coder.add_key("coderstack", expires_in=stored_expires_in, lifetime=lifetime)
    store = FakeStore(events, token=old, fail_write=fail_write)
    return events, coder, store, old


def run(coder, store, p, warnings=None, secrets=None, check_mode=False):
    return keep_token(
        coder,
        store,
        p,
        check_mode=check_mode,
        warn=(warnings if warnings is not None else []).append,
        add_secret=(secrets if secrets is not None else set()).add,
        now=lambda: NOW,
    )


def test_working_token_is_reused_without_login():
    events, coder, store, old = setup()
    res = run(coder, store, params())
    assert res["reused"] is True and res["changed"] is False
    assert events == [("check", old.split("-")[0])]


def test_rotation_creates_stores_then_deletes_and_ends_the_session():
    events, coder, store, old = setup()
    secrets = set()
    res = run(coder, store, params(force=True), secrets=secrets)
    old_id, new_id = old.split("-")[0], store.token.split("-")[0]
    assert res["changed"] is True and res["reason"] == "force is set"
    # the new token is in the Secret before the old one is deleted; the session ends last
    assert [e[0] for e in events] == ["check", "login", "create", "write", "delete", "logout"]
    assert ("write", new_id) in events and events[4] == ("delete", old_id)
    assert res["token_name"] == "coderstack-" + time.strftime("%Y%m%d%H%M%S", time.gmtime(NOW))
    assert res["deleted_token_ids"] == [old_id] and res["token_id"] == new_id
    assert coder.sessions == set()
    assert {old, store.token, "sess000001-" + "p" * 22} <= secrets  # all masked in failure messages

    # the next rotation goes back to the plain name and deletes the timestamped one
    events.clear()
    res = run(coder, store, params(force=True))
    assert res["token_name"] == "coderstack" and res["deleted_token_ids"] == [new_id]


def test_failed_secret_write_keeps_the_old_token_and_deletes_the_new_one():
    events, coder, store, old = setup(fail_write=True)
    with pytest.raises(TokenError) as ei:
        run(coder, store, params(force=True))
    assert [e[0] for e in events] == ["check", "login", "create", "write-failed", "delete", "logout"]
    new_id = events[3][1]
    assert events[4] == ("delete", new_id)  # the new token, not the stored one
    assert old.split("-")[0] in coder.keys, "the token in the Secret must stay valid"
    assert store.token == old
    msg = str(ei.value)
    assert "storing the new token in Secret coder/coder-admin-token key token failed" in msg
    assert "the Secret still holds the previous token" in msg
    assert coder.sessions == set()


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("get_user", "creating token coderstack for user admin: GET /api/v2/users/admin returned HTTP 500"),
        ("create_token", "creating token coderstack for user admin: POST /x returned HTTP 500"),
    ],
)
def test_session_is_ended_when_a_step_fails(method, expected):
    events, coder, store, old = setup()
    path = "/api/v2/users/admin" if method == "get_user" else "/x"
    coder.fail_on[method] = CoderError("GET" if method == "get_user" else "POST", path, 500, "boom")
    with pytest.raises(TokenError, match=expected):
        run(coder, store, params(force=True))
    assert events[-1][0] == "logout" and coder.sessions == set()
    assert old.split("-")[0] in coder.keys and store.token == old


def test_unknown_user_fails_and_ends_the_session():
    events, coder, store, _ = setup()
    with pytest.raises(TokenError, match="user ghost does not exist in Coder"):
        run(coder, store, params(username="ghost"))
    assert events[-1][0] == "logout" and coder.sessions == set()


def test_wrong_password_says_so():
    events, coder, store, _ = setup()
    with pytest.raises(TokenError) as ei:
        run(coder, store, params(force=True, login_password="wrong"))
    assert "logging in as admin@example.com to create a token" in str(ei.value)
    assert "check the credentials" in str(ei.value)
    assert "logout" not in [e[0] for e in events]  # no session was opened


def test_failed_delete_of_the_old_token_only_warns():
    _events, coder, store, old = setup()
    coder.fail_on["delete_token"] = CoderError("DELETE", "/k", 500, "boom")
    warnings = []
    res = run(coder, store, params(force=True), warnings=warnings)
    assert res["changed"] is True and store.token != old
    assert len(warnings) == 1 and "deleting the previous token" in warnings[0]


def test_rejected_token_is_reminted():
    _events, coder, store, old = setup()
    del coder.keys[old.split("-")[0]]  # revoked behind the module's back
    res = run(coder, store, params())
    assert res["changed"] is True and "rejected by Coder (HTTP 401" in res["reason"]
    assert res["token_name"] == "coderstack" and res["deleted_token_ids"] == []


@pytest.mark.parametrize(
    ("expires_in", "lifetime", "remint"),
    [
        (DAY - 60, 7 * DAY, True),  # expires within a day
        (DAY + 60, 7 * DAY, False),
        (5 * 3600, 8 * 3600, False),  # a short-lived token: replaced within half its lifetime, not every run
        (3 * 3600, 8 * 3600, True),
    ],
)
def test_token_expiring_soon_is_reminted(expires_in, lifetime, remint):
    _events, coder, store, old = setup(stored_expires_in=expires_in, lifetime=lifetime)
    res = run(coder, store, params())
    assert res["changed"] is remint
    if remint:
        assert "expires soon" in res["reason"] and res["deleted_token_ids"] == [old.split("-")[0]]


def test_expiring_token_mints_its_successor_without_credentials():
    events, coder, store, old = setup(stored_expires_in=3600)
    res = run(coder, store, params(login_email=None, login_password=None))
    assert res["changed"] is True and "login" not in [e[0] for e in events]
    assert old.split("-")[0] not in coder.keys and store.token != old


def test_lifetime_zero_asks_for_the_servers_maximum():
    events, coder, store, _ = setup(max_lifetime=168 * 3600)
    warnings = []
    res = run(coder, store, params(force=True), warnings=warnings)
    assert res["lifetime_seconds"] == 168 * 3600 and ("create", res["token_name"], 168 * 3600) in events
    assert warnings == []
    res = run(coder, store, params(force=True, lifetime_days=30), warnings=warnings)
    assert res["lifetime_seconds"] == 168 * 3600 and "exceeds the server's maximum" in warnings[0]


def test_check_mode_changes_nothing():
    events, coder, store, old = setup()
    res = run(coder, store, params(force=True), check_mode=True)
    assert res["changed"] is True and res["diff"]["after"]["token_id"] == "(new)"
    assert [e[0] for e in events] == ["check"] and store.token == old


def test_helpers():
    assert token_lifetime(0, 604800) == 604800
    assert token_lifetime(0, None) == 0  # no tokenconfig: the server's default
    assert token_lifetime(3, 604800) == 3 * DAY
    with pytest.raises(TokenError, match="lifetime_days must be 0"):
        token_lifetime(-1, 604800)
    assert renew_before(7 * DAY) == DAY and renew_before(3600) == 1800 and renew_before(0) == DAY
    assert rotation_name("cs", {"other"}, NOW) == "cs"
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(NOW))
    assert rotation_name("cs", {"cs", f"cs-{stamp}"}, NOW) == f"cs-{stamp}-2"
    fam = token_family(
        [{"token_name": n} for n in ("cs", f"cs-{stamp}", f"cs-{stamp}-2", "cs-other", "csx", "x-cs")], "cs"
    )
    assert [t["token_name"] for t in fam] == ["cs", f"cs-{stamp}", f"cs-{stamp}-2"]
    assert parse_time("1970-01-02T00:00:00Z") == DAY
    assert parse_time("1970-01-02T02:00:00.5+02:00") == DAY + 0.5
    assert parse_time("garbage") is None
