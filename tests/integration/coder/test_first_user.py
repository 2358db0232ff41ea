"""coder_first_user against a real, empty Coder server."""

from __future__ import annotations

from coder_it import ADMIN


def args(srv, **kw):
    a = {"coder_url": srv.url, **{k: ADMIN[k] for k in ("username", "email", "password", "name")}}
    a.update(kw)
    return a


def test_first_user_created_once_then_unchanged(fresh_coder, module):
    c = fresh_coder.client()
    assert c.has_first_user() is False

    res = module("coder_first_user", args(fresh_coder), check=True)
    assert res["changed"] is True and res["created"] is True
    assert c.has_first_user() is False, "check mode must not create the user"

    res = module("coder_first_user", args(fresh_coder))
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

    res = module("coder_first_user", args(fresh_coder))
    assert res["changed"] is False and res["existed"] is True and res["login_verified"] is True
    assert res["user"]["username"] == "admin"
    assert res["api_calls"] == {"GET": 2, "POST": 2}  # first-user check, login, me, logout


def test_wrong_password_is_a_clear_failure(fresh_coder, module):
    module("coder_first_user", args(fresh_coder, verify_login=False))
    res = module("coder_first_user", args(fresh_coder, password="Not-The-Password-123456"))
    assert res.get("failed") is True
    assert "logging in as admin@it.example.com" in res["msg"]
    assert "HTTP 401" in res["msg"] and "Secret coder-admin" in res["msg"]
    assert "Not-The-Password" not in res["msg"]
