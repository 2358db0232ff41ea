# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Coder users (coder_user, coder_users): plan what differs, then apply the plan through a CoderClient.

* :func:`plan_user` compares the wanted user (a dict of :data:`USER_OPTIONS`; None = not managed) with the user
  object from the API and returns a :class:`UserPlan`: the actions (``create``, ``delete``, ``profile``, ``roles``,
  ``suspend``, ``activate``, ``login_type``) and the managed fields before and after. It makes no API call.
* :func:`apply_user_plan` runs the plan's actions in order; check mode stops after the plan.
* :func:`reconcile_user` does both and returns ``(changed, before, after, actions)``.
* :func:`ensure_first_user` (coder_first_user): the deployment's first owner, created once, its login proven.
"""

from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import (
    LOGIN_TYPES,
    SITE_ROLES,
    site_roles,
)
from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError

# The options of one user (coder_user's own options, and each element of coder_users' `users` list).
USER_OPTIONS = {
    "username": {"type": "str", "required": True},
    "email": {"type": "str"},
    "name": {"type": "str"},
    "roles": {"type": "list", "elements": "str", "choices": list(SITE_ROLES)},
    "suspended": {"type": "bool"},
    "login_type": {"type": "str", "choices": list(LOGIN_TYPES)},
    "password": {"type": "str", "no_log": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
}


class UserError(Exception):
    """A user cannot be reconciled (bad input or unsupported change); message says what to do."""


class UserPlan:
    """What reconciling one user does: ``actions`` in order, the managed fields ``before`` and ``after``."""

    def __init__(self, want, existing, actions, before, after):
        self.want = want
        self.existing = existing
        self.actions = actions
        self.before = before
        self.after = after

    @property
    def changed(self):
        return bool(self.actions)


def user_view(user):
    """The managed fields of a Coder user object (what diffs show)."""
    if not user:
        return {}
    return {
        "username": user.get("username"),
        "email": user.get("email"),
        "name": user.get("name") or "",
        "roles": site_roles(user),
        "suspended": user.get("status") == "suspended",
        "login_type": user.get("login_type") or "",
    }


def duplicate_usernames(users):
    """The first pair of entries naming the same user (Coder usernames are case-insensitive) as a failure message,
    or None."""
    seen = {}
    for i, u in enumerate(users):
        key = (u.get("username") or "").lower()
        if key in seen:
            j = seen[key]
            return (
                f"user {u['username']} is listed twice in users: users[{j}] ({users[j]['username']}) and "
                f"users[{i}] ({u['username']}) name the same Coder user (usernames are case-insensitive): "
                "keep one entry"
            )
        seen[key] = i
    return None


def plan_user(want, existing):
    """The :class:`UserPlan` that makes ``existing`` (the API's user object, or None) match ``want``.

    Raises :class:`UserError` for what Coder cannot do (create without email or password, change an email)."""
    if want.get("state", "present") == "absent":
        if not existing:
            return UserPlan(want, None, [], {}, {})
        return UserPlan(want, existing, ["delete"], user_view(existing), {})
    if not existing:
        return _plan_create(want)
    return _plan_update(want, existing)


def _plan_create(want):
    username = want["username"]
    login_type = want.get("login_type") or "password"
    if not want.get("email"):
        raise UserError(f"user {username} does not exist and no email is given: set email to create it")
    if login_type == "password" and not want.get("password"):
        raise UserError(
            f"user {username} does not exist: a password is required to create it with login_type password "
            "(or set login_type none/github/oidc)"
        )
    after = {
        "username": username,
        "email": want["email"],
        "name": want.get("name") or "",
        "roles": sorted(set(want.get("roles") or [])),
        "suspended": bool(want.get("suspended")),
        "login_type": login_type,
    }
    actions = ["create"]
    if after["roles"]:
        actions.append("roles")
    if after["suspended"]:
        actions.append("suspend")
    return UserPlan(want, None, actions, {}, after)


def _plan_update(want, existing):
    username = want["username"]
    before = user_view(existing)
    after = dict(before)
    actions = []
    if want.get("email") and want["email"].lower() != (existing.get("email") or "").lower():
        raise UserError(
            "user {} has email {} in Coder but {} is wanted: Coder's API cannot change a user's email; "
            "change it in the inventory, or remove and re-add the user".format(
                username, existing.get("email"), want["email"]
            )
        )
    if want.get("name") is not None and want["name"] != before["name"]:
        after["name"] = want["name"]
        actions.append("profile")
    if want.get("roles") is not None and sorted(set(want["roles"])) != before["roles"]:
        after["roles"] = sorted(set(want["roles"]))
        actions.append("roles")
    if want.get("suspended") is not None and bool(want["suspended"]) != before["suspended"]:
        after["suspended"] = bool(want["suspended"])
        actions.append("suspend" if want["suspended"] else "activate")
    if want.get("login_type") and want["login_type"] != before["login_type"]:
        after["login_type"] = want["login_type"]
        actions.append("login_type")
    return UserPlan(want, existing, actions, before, after)


def apply_user_plan(client, plan):
    """Run the plan's actions; returns the managed fields after them (from the server's answers)."""
    if not plan.actions:
        return plan.after
    if plan.actions == ["delete"]:
        client.delete_user(plan.existing["id"])
        return {}
    if plan.actions[0] == "create":
        return _apply_create(client, plan)
    return _apply_update(client, plan)


def _apply_create(client, plan):
    want, after = plan.want, plan.after
    created = client.create_user(
        after["username"],
        after["email"],
        name=after["name"],
        password=want.get("password") if after["login_type"] == "password" else None,
        login_type=after["login_type"],
        status="suspended" if after["suspended"] else "active",
    )
    uid = created["id"]
    if after["roles"]:
        created = client.update_roles(uid, after["roles"])
    if after["suspended"] and created.get("status") != "suspended":
        created = client.suspend_user(uid)
    return user_view(created)


def _apply_update(client, plan):
    after, uid, cur = plan.after, plan.existing["id"], plan.existing
    username = plan.want["username"]
    for act in plan.actions:
        if act == "profile":
            cur = client.update_profile(uid, username, after["name"], cur.get("avatar_url", ""))
        elif act == "roles":
            cur = client.update_roles(uid, after["roles"])
        elif act == "suspend":
            cur = client.suspend_user(uid)
        elif act == "activate":
            cur = client.activate_user(uid)
        elif act == "login_type":
            client.update_login_type(uid, after["login_type"])
            cur = dict(cur, login_type=after["login_type"])
    # each call answers with the whole user, so the last answer shows all changes (login_type excepted)
    if isinstance(cur, dict) and cur.get("username"):
        return dict(user_view(cur), login_type=after["login_type"])
    return after


def reconcile_user(client, want, existing, check_mode=False):
    """Make one user match ``want``: :func:`plan_user`, then (unless ``check_mode``) :func:`apply_user_plan`.

    Returns (changed, before, after, actions). An unchanged user costs no API call (the caller has ``existing``).
    """
    plan = plan_user(want, existing)
    after = plan.after if check_mode else apply_user_plan(client, plan)
    return plan.changed, plan.before, after, list(plan.actions)


# ------------------------------------------------------------------------------------------------ first user
class StepError(Exception):
    """A Coder call failed during ``what``: the module fails with failure_message(what, err, hint)."""

    def __init__(self, what, err, hint=None):
        super().__init__(f"{what}: {err}")
        self.what, self.err, self.hint = what, err, hint


def ensure_first_user(client, p, check_mode=False, warn=None, add_secret=None):
    """Create the first (owner) user when the deployment has none; with ``verify_login``, prove the email/password
    by a login whose session always ends. ``p``: coder_first_user's options. Returns the module result; raises
    :class:`StepError`. Nothing is posted before coder_url proves to be Coder (a wrong URL must not receive the
    password)."""
    result = {"changed": False, "created": False, "existed": False, "login_verified": False}
    what = f"first user {p['username']} of {p['coder_url']}"
    try:
        result["version"] = client.coder_buildinfo()["version"]
        result["existed"] = client.has_first_user()
    except CoderError as e:
        raise StepError("checking the " + what, e) from e
    if not result["existed"]:
        result.update(changed=True, created=True)
        result["diff"] = {
            "before": {},
            "after": {"username": p["username"], "email": p["email"], "name": p["name"], "roles": ["owner"]},
            "before_header": "first user",
            "after_header": "first user",
        }
        if check_mode:
            return result
        try:
            res = client.create_first_user(p["username"], p["email"], p["password"], p["name"])
        except CoderError as e:
            raise StepError(
                "creating the " + what, e, "fix the value Coder names above (e.g. a stronger password)"
            ) from e
        result["user"] = {"id": res.get("user_id"), "username": p["username"], "email": p["email"]}
    if p["verify_login"] and not check_mode:
        result["user"] = verify_login(client, p, what, warn or (lambda msg: None), add_secret or (lambda v: None))
        result["login_verified"] = True
    return result


def verify_login(client, p, what, warn, add_secret):
    """Log in with p's email/password, read who that is, log out again (always); the user's id, username, email."""
    try:
        session = client.login(p["email"], p["password"])
    except CoderError as e:
        if e.status == 401:
            raise StepError(
                f"logging in as {p['email']} ({what})",
                e,
                "the deployment already has a first user and this email/password does not log in: use the "
                "password stored in Secret coder-admin (or reset it with `coder reset-password`)",
            ) from e
        raise StepError(f"logging in as {p['email']}", e) from e
    add_secret(session)
    me, err = None, None
    try:
        me = client.me(token=session)
    except CoderError as e:
        err = e
    try:  # the session ends before anything else happens, on success and on failure
        client.logout(session)
    except CoderError as e:
        warn(f"ending the login session of {p['email']} failed: {e}; it expires on its own")
    if err is not None:
        raise StepError("reading the logged-in user " + p["email"], err)
    if me.get("username") != p["username"]:
        warn(f"the login {p['email']} belongs to user {me.get('username')}, not {p['username']} as configured")
    return {"id": me.get("id"), "username": me.get("username"), "email": me.get("email")}
