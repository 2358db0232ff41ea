"""reconcile_user against a fake Coder that keeps users like the server does (ids, roles, status, login type) and
refuses what the server refuses (duplicate username or email, an invalid email, a password for a non-password login).

Every test compares the returned before/after with what the fake server holds afterwards and with the exact API
calls made, so a reconcile that skips, repeats or misorders a call fails (the real server runs in
tests/integration/coder/test_users.py)."""

from __future__ import annotations

import copy
import re

import pytest
from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.coder_users import (
    UserError,
    apply_user_plan,
    duplicate_usernames,
    plan_user,
    reconcile_user,
    user_view,
)


class FakeCoder:
    """The users endpoints of Coder, in memory. ``calls`` lists (method name, user id) in order."""

    def __init__(self, *users):
        self.users = {u["id"]: copy.deepcopy(u) for u in users}
        self.calls = []
        self.n = 0

    def _user(self, uid):
        if uid not in self.users:
            raise CoderError("GET", f"/api/v2/users/{uid}", 404, "Resource not found")
        return self.users[uid]

    def _answer(self, uid):
        return copy.deepcopy(self._user(uid))

    def create_user(self, username, email, name="", password=None, login_type="password", status="active", orgs=None):
        self.calls.append(("create_user", username))
        if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email or ""):
            raise CoderError("POST", "/api/v2/users", 400, "Validation failed.", validations=[{"field": "email"}])
        if any(
            u["username"].lower() == username.lower() or u["email"].lower() == email.lower()
            for u in self.users.values()
        ):
            raise CoderError("POST", "/api/v2/users", 409, "User already exists.")
        if login_type == "password" and not password:
            raise CoderError("POST", "/api/v2/users", 400, "Password is required for login type password.")
        if login_type != "password" and password:
            raise CoderError("POST", "/api/v2/users", 400, "Password cannot be set for non-password login types.")
        self.n += 1
        uid = f"u{self.n}"
        self.users[uid] = {
            "id": uid,
            "username": username,
            "email": email,
            "name": name,
            "status": status,
            "login_type": login_type,
            "roles": [],
            "password": password,  # kept to prove which password was sent
        }
        return self._answer(uid)

    def update_profile(self, uid, username, name, avatar_url=""):
        self.calls.append(("update_profile", uid))
        self._user(uid).update(username=username, name=name)
        return self._answer(uid)

    def update_roles(self, uid, roles):
        self.calls.append(("update_roles", uid))
        self._user(uid)["roles"] = [{"name": r, "display_name": r.title()} for r in sorted(roles)]
        return self._answer(uid)

    def suspend_user(self, uid):
        self.calls.append(("suspend_user", uid))
        self._user(uid)["status"] = "suspended"
        return self._answer(uid)

    def activate_user(self, uid):
        self.calls.append(("activate_user", uid))
        self._user(uid)["status"] = "active"
        return self._answer(uid)

    def update_login_type(self, uid, login_type):
        self.calls.append(("update_login_type", uid))
        self._user(uid)["login_type"] = login_type
        return {"login_type": login_type}

    def delete_user(self, uid):
        self.calls.append(("delete_user", uid))
        self._user(uid)
        del self.users[uid]


ALICE = {
    "id": "a1",
    "username": "alice",
    "email": "alice@example.com",
    "name": "Alice",
    "status": "active",
    "login_type": "password",
    "roles": [{"name": "template-admin", "display_name": "Template Admin"}, {"name": "x", "organization_id": "o1"}],
}


def want(**kw):
    base = dict.fromkeys(("email", "name", "roles", "suspended", "login_type", "password"))
    base.update(username="alice", state="present")
    base.update(kw)
    return base


def held(server, username):
    """The managed fields of USERNAME as the fake server holds them (None when it has no such user)."""
    for u in server.users.values():
        if u["username"] == username:
            return user_view(u)
    return None


def test_view_ignores_org_roles():
    assert user_view(ALICE)["roles"] == ["template-admin"]


def test_unchanged_user_costs_no_call():
    c = FakeCoder(ALICE)
    changed, before, after, actions = reconcile_user(
        c, want(email="ALICE@example.com", name="Alice", roles=["template-admin"], suspended=False), ALICE
    )
    assert (changed, actions, c.calls) == (False, [], [])
    assert before == after == held(c, "alice")


def test_changes_in_check_mode_give_the_exact_diff_and_touch_nothing():
    c = FakeCoder(ALICE)
    changed, before, after, actions = reconcile_user(
        c, want(roles=["auditor", "owner"], suspended=True, name="Alice B"), ALICE, check_mode=True
    )
    assert changed and c.calls == []
    assert held(c, "alice") == before == user_view(ALICE)
    assert actions == ["profile", "roles", "suspend"]
    assert {k: (before[k], after[k]) for k in before if before[k] != after[k]} == {
        "name": ("Alice", "Alice B"),
        "roles": (["template-admin"], ["auditor", "owner"]),
        "suspended": (False, True),
    }


def test_changes_are_applied_in_order_and_after_is_what_the_server_holds():
    c = FakeCoder(ALICE)
    changed, before, after, actions = reconcile_user(
        c, want(roles=["auditor", "owner"], suspended=True, name="Alice B"), ALICE
    )
    assert changed and actions == ["profile", "roles", "suspend"]
    assert c.calls == [("update_profile", "a1"), ("update_roles", "a1"), ("suspend_user", "a1")]
    assert after == held(c, "alice")
    assert after == dict(before, name="Alice B", roles=["auditor", "owner"], suspended=True)


def test_activate_and_login_type_change():
    c = FakeCoder(dict(ALICE, status="suspended"))
    changed, _before, after, actions = reconcile_user(c, want(suspended=False, login_type="oidc"), c.users["a1"])
    assert changed and actions == ["activate", "login_type"]
    assert c.calls == [("activate_user", "a1"), ("update_login_type", "a1")]
    assert after == held(c, "alice") and after["suspended"] is False and after["login_type"] == "oidc"


def test_create_sends_the_password_roles_and_status_and_after_matches_the_server():
    c = FakeCoder(ALICE)
    w = want(username="bob", email="bob@example.com", name="Bob", roles=["auditor"], suspended=True, password="pw-1")
    changed, before, after, actions = reconcile_user(c, w, None)
    assert changed and before == {} and actions == ["create", "roles", "suspend"]
    bob = next(u for u in c.users.values() if u["username"] == "bob")
    assert bob["password"] == "pw-1" and bob["status"] == "suspended"
    # created suspended already: no extra suspend call
    assert c.calls == [("create_user", "bob"), ("update_roles", bob["id"])]
    assert (
        after
        == held(c, "bob")
        == {
            "username": "bob",
            "email": "bob@example.com",
            "name": "Bob",
            "roles": ["auditor"],
            "suspended": True,
            "login_type": "password",
        }
    )


def test_create_without_password_login_sends_no_password():
    c = FakeCoder()
    changed, _before, after, _actions = reconcile_user(
        c, want(username="carol", email="carol@example.com", login_type="oidc", password="ignored"), None
    )
    assert changed and after == held(c, "carol") and after["login_type"] == "oidc"
    assert c.users["u1"]["password"] is None


def test_create_needs_password_for_password_login():
    c = FakeCoder()
    with pytest.raises(UserError, match="password is required"):
        reconcile_user(c, want(username="bob", email="bob@example.com"), None)
    assert c.calls == [] and c.users == {}
    changed, before, after, actions = reconcile_user(
        c, want(username="bob", email="bob@example.com", login_type="none"), None, check_mode=True
    )
    assert changed and before == {} and after["login_type"] == "none" and actions == ["create"]
    assert c.calls == [] and c.users == {}


def test_create_needs_an_email():
    c = FakeCoder()
    with pytest.raises(UserError, match="no email is given"):
        reconcile_user(c, want(username="bob", password="pw"), None)
    assert c.calls == []


def test_server_refusals_propagate_and_create_nothing():
    c = FakeCoder(ALICE)
    with pytest.raises(CoderError) as err:
        reconcile_user(c, want(username="alice2", email="ALICE@example.com", password="pw"), None)
    assert err.value.status == 409
    with pytest.raises(CoderError) as err:
        reconcile_user(c, want(username="dan", email="not-an-email", password="pw"), None)
    assert err.value.status == 400
    assert list(c.users) == ["a1"] and held(c, "alice") == user_view(ALICE)


def test_email_change_is_refused_with_advice():
    c = FakeCoder(ALICE)
    with pytest.raises(UserError, match="cannot change a user's email"):
        reconcile_user(c, want(email="new@example.com"), ALICE)
    assert c.calls == [] and held(c, "alice") == user_view(ALICE)


def test_absent():
    c = FakeCoder(ALICE)
    assert reconcile_user(c, want(username="nobody", state="absent"), None) == (False, {}, {}, [])
    assert c.calls == []
    changed, before, after, actions = reconcile_user(c, want(state="absent"), ALICE)
    assert changed and before == user_view(ALICE) and after == {} and actions == ["delete"]
    assert c.calls == [("delete_user", "a1")] and held(c, "alice") is None


def test_plan_makes_no_call_and_lists_the_actions():
    c = FakeCoder(ALICE)
    plan = plan_user(want(roles=["owner"], suspended=True), ALICE)
    assert plan.actions == ["roles", "suspend"] and plan.changed and c.calls == []
    assert plan.after == dict(user_view(ALICE), roles=["owner"], suspended=True)
    assert plan_user(want(state="absent"), ALICE).actions == ["delete"]
    assert plan_user(want(state="absent"), None).changed is False
    create = plan_user(want(username="eve", email="eve@example.com", login_type="none", roles=["auditor"]), None)
    assert create.actions == ["create", "roles"] and create.before == {}
    assert apply_user_plan(c, create) == held(c, "eve")
    assert c.calls == [("create_user", "eve"), ("update_roles", "u1")]


def test_duplicate_usernames_are_found_ignoring_case_and_both_entries_named():
    users = [{"username": "dave"}, {"username": "erin"}, {"username": "Dave"}]
    msg = duplicate_usernames(users)
    assert msg.startswith("user Dave is listed twice in users: users[0] (dave) and users[2] (Dave)")
    assert "case-insensitive" in msg
    assert duplicate_usernames([{"username": "a"}, {"username": "b"}]) is None
