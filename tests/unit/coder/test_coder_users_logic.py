"""reconcile_user: exact diffs and which API calls an input causes (a fake client records them)."""

from __future__ import annotations

import pytest
from ansible.module_utils.coder_common import UserError, reconcile_user, user_view


class FakeClient:
    def __init__(self):
        self.done = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.done.append(name)
            return {}

        return call


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


def test_view_ignores_org_roles():
    assert user_view(ALICE)["roles"] == ["template-admin"]


def test_unchanged_user_costs_no_call():
    c = FakeClient()
    changed, before, after, actions = reconcile_user(
        c, want(email="ALICE@example.com", name="Alice", roles=["template-admin"], suspended=False), ALICE
    )
    assert (changed, actions, c.done) == (False, [], [])
    assert before == after


def test_changes_give_exact_diff_in_check_mode():
    c = FakeClient()
    changed, before, after, actions = reconcile_user(
        c, want(roles=["auditor", "owner"], suspended=True, name="Alice B"), ALICE, check_mode=True
    )
    assert changed and c.done == []
    assert actions == ["profile", "roles", "suspend"]
    assert {k: (before[k], after[k]) for k in before if before[k] != after[k]} == {
        "name": ("Alice", "Alice B"),
        "roles": (["template-admin"], ["auditor", "owner"]),
        "suspended": (False, True),
    }


def test_create_needs_password_for_password_login():
    with pytest.raises(UserError, match="password is required"):
        reconcile_user(FakeClient(), want(username="bob", email="bob@example.com"), None)
    changed, before, after, actions = reconcile_user(
        FakeClient(), want(username="bob", email="bob@example.com", login_type="none"), None, check_mode=True
    )
    assert changed and before == {} and after["login_type"] == "none" and actions == ["create"]


def test_email_change_is_refused_with_advice():
    with pytest.raises(UserError, match="cannot change a user's email"):
        reconcile_user(FakeClient(), want(email="new@example.com"), ALICE)


def test_absent():
    c = FakeClient()
    assert reconcile_user(c, want(state="absent"), None) == (False, {}, {}, [])
    changed, _before, after, actions = reconcile_user(c, want(state="absent"), ALICE)
    assert changed and after == {} and actions == ["delete"] and c.done == ["delete_user"]
