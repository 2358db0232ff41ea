# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the coder_* modules: the connection options, building a client, and a Kubernetes
Secret helper (the `kubernetes` Python client, imported only by the modules that store secrets)."""

import base64

from ansible.module_utils.coder_client import CoderClient, CoderError

# Options every Coder module takes (merge into the module's own argument_spec).
CODER_CONNECTION_SPEC = {
    "coder_url": {"type": "str", "required": True, "aliases": ["url"]},
    "coder_token": {"type": "str", "no_log": True, "aliases": ["token"]},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "int", "default": 30},
}

# Options of the modules that read/write a Kubernetes Secret.
KUBE_SPEC = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
}


def connection_spec(**extra):
    spec = dict(CODER_CONNECTION_SPEC)
    spec.update(extra)
    return spec


def client_from_module(module, token=None):
    p = module.params
    return CoderClient(
        p["coder_url"],
        token=token if token is not None else p.get("coder_token"),
        ca_path=p.get("ca_path"),
        validate_certs=p.get("validate_certs", True),
        timeout=p.get("timeout") or 30,
    )


def fail(module, what, err, hint=None, **kwargs):
    """fail_json naming the object and, when the cause is known, what to do."""
    msg = f"{what}: {err}"
    if hint is None and isinstance(err, CoderError):
        if err.status == 401:
            hint = (
                "the coder_token is missing, expired or revoked: pass a valid token "
                "(e.g. from Secret coder-admin-token)"
            )
        elif err.status == 403:
            hint = "the token's user lacks the permission: use an owner (or user-admin) token"
        elif err.status is None:
            hint = "check coder_url and that the Coder server is running (GET /healthz)"
    if hint:
        msg += ". " + hint
    module.fail_json(msg=msg, **kwargs)


def api_calls(client):
    return dict(client.calls)


# --------------------------------------------------------------------- Kubernetes Secrets
class SecretStore:
    """Read/write one key of a Kubernetes Secret (Opaque)."""

    def __init__(self, kubeconfig=None, context=None):
        try:
            from kubernetes import client, config
        except ImportError as e:  # pragma: no cover - depends on the controller's Python
            raise RuntimeError(f"the 'kubernetes' Python package is required (pip install kubernetes): {e}") from e
        self._client = client
        if kubeconfig or context:
            api = config.new_client_from_config(config_file=kubeconfig, context=context)
        else:
            try:
                config.load_incluster_config()
                api = client.ApiClient()
            except config.ConfigException:
                api = config.new_client_from_config()
        self.core = client.CoreV1Api(api)

    def read(self, namespace, name):
        """(secret object, {key: str}) or (None, {}) when it does not exist."""
        from kubernetes.client.rest import ApiException

        try:
            sec = self.core.read_namespaced_secret(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None, {}
            raise
        data = {}
        for k, v in (sec.data or {}).items():
            data[k] = base64.b64decode(v).decode("utf-8")
        return sec, data

    def write(self, namespace, name, values, existing=None, labels=None):
        """Create the Secret or merge ``values`` into it. Returns the stored object."""
        c = self._client
        enc = {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in values.items()}
        if existing is None:
            body = c.V1Secret(
                metadata=c.V1ObjectMeta(name=name, namespace=namespace, labels=labels or None),
                type="Opaque",
                data=enc,
            )
            return self.core.create_namespaced_secret(namespace, body)
        merged = dict(existing.data or {})
        merged.update(enc)
        existing.data = merged
        if labels:
            existing.metadata.labels = dict(existing.metadata.labels or {}, **labels)
        return self.core.replace_namespaced_secret(name, namespace, existing)


# --------------------------------------------------------------------- users
USER_FIELDS = ("username", "email", "name", "roles", "suspended", "login_type")

# The options of one user (coder_user's own options, and each element of coder_users' `users` list).
USER_OPTIONS = {
    "username": {"type": "str", "required": True},
    "email": {"type": "str"},
    "name": {"type": "str"},
    "roles": {"type": "list", "elements": "str", "choices": ["owner", "template-admin", "user-admin", "auditor"]},
    "suspended": {"type": "bool"},
    "login_type": {"type": "str", "choices": ["password", "none", "github", "oidc"]},
    "password": {"type": "str", "no_log": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
}


def user_view(user):
    """The managed fields of a Coder user object (what diffs show)."""
    if not user:
        return {}
    from ansible.module_utils.coder_client import site_roles

    return {
        "username": user.get("username"),
        "email": user.get("email"),
        "name": user.get("name") or "",
        "roles": site_roles(user),
        "suspended": user.get("status") == "suspended",
        "login_type": user.get("login_type") or "",
    }


class UserError(Exception):
    """A user cannot be reconciled (bad input or unsupported change); message says what to do."""


def reconcile_user(client, want, existing, check_mode=False):
    """Make one user match ``want`` (a dict of USER_OPTIONS; None values = not managed).

    ``existing`` is the user object from the API (or None). Returns (changed, before, after, actions).
    An unchanged user costs no API call here (the caller already has ``existing``).
    """
    username = want["username"]
    before = user_view(existing)
    actions = []
    if want.get("state", "present") == "absent":
        if not existing:
            return False, {}, {}, []
        actions.append("delete")
        if not check_mode:
            client.delete_user(existing["id"])
        return True, before, {}, actions

    if not existing:
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
        actions.append("create")
        if after["roles"]:
            actions.append("roles")
        if after["suspended"]:
            actions.append("suspend")
        if not check_mode:
            created = client.create_user(
                username,
                want["email"],
                name=after["name"],
                password=want.get("password") if login_type == "password" else None,
                login_type=login_type,
                status="suspended" if after["suspended"] else "active",
            )
            uid = created["id"]
            if after["roles"]:
                created = client.update_roles(uid, after["roles"])
            if after["suspended"] and created.get("status") != "suspended":
                created = client.suspend_user(uid)
            after = user_view(created)
        return True, {}, after, actions

    after = dict(before)
    uid = existing["id"]
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
    if not actions or check_mode:
        return bool(actions), before, after, actions
    cur = existing
    for act in actions:
        if act == "profile":
            cur = client.update_profile(uid, username, after["name"])
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
        after = dict(user_view(cur), login_type=after["login_type"])
    return True, before, after, actions
