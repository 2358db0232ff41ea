"""coder_user / coder_users / coder_info against a real Coder server: exact diffs, check mode, API call counts."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture()
def base(coder_server):
    return {"coder_url": coder_server.url, "coder_token": coder_server.admin_token}


def uname(prefix="u"):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def test_user_lifecycle_with_exact_diffs(base, admin_client, module):
    name = uname("alice")
    want = dict(
        base,
        username=name,
        email=f"{name}@it.example.com",
        name="Alice",
        roles=["template-admin"],
        password="Alice-Pass-5f1e9a7c33",
    )

    res = module("coderstack.platform.coder_user", want, check=True)
    assert res["changed"] is True and res["actions"] == ["create", "roles"]
    assert admin_client.get_user(name) is None, "check mode created the user"

    res = module("coderstack.platform.coder_user", want)
    assert res["changed"] is True
    assert res["diff"]["before"] == {}
    assert res["diff"]["after"] == {
        "username": name,
        "email": f"{name}@it.example.com",
        "name": "Alice",
        "roles": ["template-admin"],
        "suspended": False,
        "login_type": "password",
    }
    assert "Alice-Pass" not in str(res)
    u = admin_client.get_user(name)
    assert u["status"] == "active" and [r["name"] for r in u["roles"]] == ["template-admin"]

    res = module("coderstack.platform.coder_user", want)
    assert res["changed"] is False and res["api_calls"] == {"GET": 1}

    change = dict(want, roles=["auditor", "user-admin"], suspended=True, name="Alice B")
    res = module("coderstack.platform.coder_user", change, check=True)
    assert res["changed"] is True and admin_client.get_user(name)["status"] == "active"
    res = module("coderstack.platform.coder_user", change)
    before, after = res["diff"]["before"], res["diff"]["after"]
    assert {k: (before[k], after[k]) for k in before if before[k] != after[k]} == {
        "name": ("Alice", "Alice B"),
        "roles": (["template-admin"], ["auditor", "user-admin"]),
        "suspended": (False, True),
    }
    u = admin_client.get_user(name)
    assert u["status"] == "suspended" and u["name"] == "Alice B"
    assert sorted(r["name"] for r in u["roles"]) == ["auditor", "user-admin"]

    res = module("coderstack.platform.coder_user", dict(change, suspended=False))
    assert res["diff"]["after"]["suspended"] is False and admin_client.get_user(name)["status"] == "active"

    res = module("coderstack.platform.coder_user", dict(base, username=name, state="absent"), check=True)
    assert res["changed"] is True and admin_client.get_user(name) is not None
    res = module("coderstack.platform.coder_user", dict(base, username=name, state="absent"))
    assert res["changed"] is True and res["diff"]["after"] == {} and admin_client.get_user(name) is None
    res = module("coderstack.platform.coder_user", dict(base, username=name, state="absent"))
    assert res["changed"] is False


def test_unsupported_changes_fail_with_advice(base, module):
    name = uname("bob")
    module(
        "coderstack.platform.coder_user", dict(base, username=name, email=f"{name}@it.example.com", login_type="github")
    )
    res = module("coderstack.platform.coder_user", dict(base, username=name, email=f"other-{name}@it.example.com"))
    assert res["failed"] and "cannot change a user's email" in res["msg"] and name in res["msg"]
    res = module("coderstack.platform.coder_user", dict(base, username=name, login_type="password"))
    assert res["failed"] and "login type" in res["msg"] and f"Coder user {name}" in res["msg"]
    res = module("coderstack.platform.coder_user", dict(base, username=uname("nopw"), email="x@it.example.com"))
    assert res["failed"] and "a password is required" in res["msg"]
    res = module("coderstack.platform.coder_user", dict(base, coder_token="bad-token", username=name))
    assert res["failed"] and "HTTP 401" in res["msg"] and "coder_token" in res["msg"]


def test_bulk_unchanged_users_cost_one_list_call(base, admin_client, module):
    users = [
        {
            "username": uname("bulk"),
            "email": None,
            "name": f"Bulk {i}",
            "roles": ["auditor"] if i % 2 else [],
            "login_type": "github",
            "suspended": i == 2,
        }
        for i in range(5)
    ]
    for u in users:
        u["email"] = f"{u['username']}@it.example.com"
    res = module("coderstack.platform.coder_users", dict(base, users=users))
    assert res["changed"] is True and sorted(res["changed_users"]) == sorted(u["username"] for u in users)
    assert set(res["diff"]["after"]) == {u["username"] for u in users}

    res = module("coderstack.platform.coder_users", dict(base, users=users))
    assert res["changed"] is False and res["changed_users"] == []
    assert res["api_calls"] == {"GET": 1}, "an unchanged user must cost no API call beyond the one list call"

    users[0]["roles"] = ["template-admin"]
    users[1]["state"] = "absent"
    res = module("coderstack.platform.coder_users", dict(base, users=users))
    assert res["changed_users"] == [users[0]["username"], users[1]["username"]]
    assert res["api_calls"] == {"GET": 1, "PUT": 1, "DELETE": 1}
    assert res["diff"]["before"][users[0]["username"]]["roles"] == []
    assert res["diff"]["after"][users[0]["username"]]["roles"] == ["template-admin"]
    assert res["diff"]["after"][users[1]["username"]] == {}
    assert admin_client.get_user(users[1]["username"]) is None


def test_info_is_read_only(base, module):
    res = module("coderstack.platform.coder_info", base)
    assert res["changed"] is False
    assert res["buildinfo"]["version"].startswith("v2.")
    assert "admin" in [u["username"] for u in res["users"]]
    assert res["templates"] == []


def test_unchanged_users_at_scale_cost_one_call_per_page(base, module):
    """150 users: the first run creates them, an unchanged run costs one list call (pages of 1000) and nothing else."""
    users = [
        {"username": f"scale{i:03d}-{uuid.uuid4().hex[:4]}", "login_type": "github", "roles": [], "suspended": False}
        for i in range(150)
    ]
    for u in users:
        u["email"] = f"{u['username']}@it.example.com"
    res = module("coderstack.platform.coder_users", dict(base, users=users), diff=False)
    assert len(res["changed_users"]) == 150 and res["api_calls"]["POST"] == 150
    res = module("coderstack.platform.coder_users", dict(base, users=users), diff=False)
    assert res["changed"] is False
    total = sum(res["api_calls"].values())
    assert res["api_calls"] == {"GET": total} and total == 1  # 150 + admin + a few users of other tests: 1 page
