# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the coder_* modules: the connection options, building a client, secret-free failures
(:func:`sanitize`, :func:`secret_free`), a Kubernetes Secret helper (the `kubernetes` Python client, imported only
by the modules that store secrets), user reconciliation and the token kept in a Secret (:func:`keep_token`)."""

import base64
import calendar
import json
import re
import sys
import time
import traceback
from urllib.parse import quote, unquote, urlsplit

from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderClient, CoderError

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


# --------------------------------------------------------------------- secret-free messages
MASK = "********"
# scheme://user:password@host -> scheme://********@host (greedy up to the last @ before the path)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s?#'\"<>]*@")
# ?token=...&password=... in URLs and query strings
_SECRET_QUERY = re.compile(
    r"(?i)(?P<key>[?&;](?:[a-z0-9_.-]*(?:token|password|passwd|secret|api[_-]?key|session)[a-z0-9_.-]*)=)"
    r"[^&#\s'\"<>]+"
)
# a Coder API key / session token: <10 character id>-<secret>; the id is public, the secret is masked
_CODER_KEY = re.compile(r"\b(?P<id>[0-9A-Za-z]{10})-[0-9A-Za-z]{20,64}\b")


def _forms(value):
    """A secret as it may appear in a message: raw, URL-encoded, JSON-escaped."""
    out = {value}
    out.add(quote(value, safe=""))
    out.add(json.dumps(value)[1:-1])
    return {v for v in out if v}


def sanitize(text, secrets=()):
    """``text`` without secrets: credentials in URLs (``user:password@``, ``?token=``), every value in ``secrets``
    (e.g. the values of the module's no_log options, session tokens) and anything shaped like a Coder token.

    The one sanitizer of the Coder modules: :func:`secret_free` runs every failure message and warning through it.
    """
    if text is None:
        return ""
    text = str(text)
    values = set()
    for s in secrets or ():
        if s is None or isinstance(s, bool):
            continue
        s = str(s)
        if s and s != MASK:
            values.update(_forms(s))
    for v in sorted(values, key=len, reverse=True):
        text = text.replace(v, MASK)
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text)
    text = _SECRET_QUERY.sub(lambda m: m.group("key") + MASK, text)
    return _CODER_KEY.sub(lambda m: m.group("id") + "-" + MASK, text)


def sanitize_obj(obj, secrets=()):
    """:func:`sanitize` applied to every string in a (nested) result value."""
    if isinstance(obj, str):
        return sanitize(obj, secrets)
    if isinstance(obj, dict):
        return {k: sanitize_obj(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(sanitize_obj(v, secrets) for v in obj)
    return obj


def url_secrets(url):
    """The password embedded in a URL, if any (the whole ``user:password@`` is masked by :func:`sanitize`)."""
    try:
        password = urlsplit(url or "").password
    except ValueError:
        return set()
    return {unquote(password)} if password else set()


def secrets_of(module):
    """Everything a message of ``module`` must not show: its no_log values, the secrets it registered with
    ``add_secret`` and credentials inside coder_url."""
    out = set(getattr(module, "no_log_values", None) or ())
    out.update(getattr(module, "_coder_secrets", None) or ())
    params = getattr(module, "params", None) or {}
    out.update(url_secrets(params.get("coder_url")))
    return out


_CURRENT = []  # the module of this process, for run_main


def secret_free(module):
    """Make an AnsibleModule's failures and warnings secret-free; returns the module.

    Every Coder module calls it right after ``module = AnsibleModule(...)``. ``fail_json`` then sanitizes the
    message, every string in the result, the traceback and the echoed module arguments (:func:`sanitize` with
    :func:`secrets_of`); ``warn`` the warning; ``exit_json`` the echoed arguments (results are kept: return_token
    returns a token on purpose). ``module.add_secret(value)`` registers values learned at run time (session
    tokens, tokens read from a Secret or just created) so they are masked too. The module stays a plain
    AnsibleModule, so tools that swap that class for a stub (ansible-lint's check of task arguments) keep working.
    """
    module._coder_secrets = set()
    base_fail, base_exit, base_warn = module.fail_json, module.exit_json, module.warn

    def add_secret(*values):
        for v in values:
            if v:
                module._coder_secrets.add(str(v))

    def invocation(secrets):
        return {"module_args": sanitize_obj(dict(module.params), secrets)}

    def warn(warning, *args, **kwargs):
        return base_warn(sanitize(warning, secrets_of(module)), *args, **kwargs)

    def exit_json(**kwargs):
        kwargs.setdefault("invocation", invocation(secrets_of(module)))
        base_exit(**kwargs)

    def fail_json(msg="", **kwargs):
        secrets = secrets_of(module)
        exception = kwargs.pop("exception", None)
        if isinstance(exception, BaseException):
            exception = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
        elif exception is None and sys.exc_info()[1] is not None:
            exception = traceback.format_exc()
        if isinstance(exception, str):
            # used by Ansible only when tracebacks are enabled (ANSIBLE_DISPLAY_TRACEBACK)
            kwargs["exception"] = sanitize(exception, secrets)
        kwargs = sanitize_obj(kwargs, secrets)
        kwargs.setdefault("invocation", invocation(secrets))
        msg = sanitize(msg, secrets).strip() or "the module failed without saying why (a bug: please report it)"
        base_fail(msg=msg, **kwargs)

    module.add_secret = add_secret
    module.warn = warn
    module.exit_json = exit_json
    module.fail_json = fail_json
    _CURRENT[:] = [module]
    return module


def run_main(main):
    """Run a Coder module's ``main()``; an unexpected exception still fails with a sanitized message (instead of
    Ansible printing the raw exception, which may carry a URL with credentials or a token)."""
    try:
        main()
    except Exception as e:
        if not _CURRENT:
            raise
        _CURRENT[0].fail_json(
            msg=f"unexpected error ({type(e).__name__}): {e}; this is a bug, please report it", exception=e
        )


def client_from_module(module, token=None):
    """A CoderClient for the module's connection options; a bad coder_url fails the module."""
    p = module.params
    tok = token if token is not None else p.get("coder_token")
    try:
        return CoderClient(
            p["coder_url"],
            token=tok,
            ca_path=p.get("ca_path"),
            validate_certs=p.get("validate_certs", True),
            timeout=p.get("timeout") or 30,
        )
    except (ValueError, OSError) as e:  # a bad URL, an unreadable ca_path
        module.fail_json(msg=sanitize(f"cannot use coder_url {p.get('coder_url')}: {e}", secrets_of(module)))


def failure_message(what, err, hint=None):
    """``<what>: <err>. <hint>`` with a default hint for the usual Coder errors."""
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
    return msg


def fail(module, what, err, hint=None, **kwargs):
    """fail_json naming the object and, when the cause is known, what to do (sanitized)."""
    secrets = secrets_of(module)
    module.fail_json(msg=sanitize(failure_message(what, err, hint), secrets), **sanitize_obj(kwargs, secrets))


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
    from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import site_roles

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


# --------------------------------------------------------------------- the token kept in a Secret
RENEW_BEFORE_SECONDS = 86400  # a stored token that expires within a day is replaced ...
# ... or, for tokens that live less than two days, within half their lifetime (else every run would replace it)


class TokenError(Exception):
    """The token cannot be kept; ``str()`` says what failed and what to do, ``result`` is returned with it."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = result


def token_id(token):
    """The public half of a Coder token (``<id>-<secret>``)."""
    return (token or "").split("-", 1)[0]


def parse_time(text):
    """Epoch seconds of an RFC 3339 time as Coder writes it (``2025-01-08T12:34:56.123456789Z``), or None."""
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$", text or "")
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    epoch = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + float("0." + (m.group(7) or "0"))
    tz = m.group(8)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def renew_before(lifetime_seconds):
    """Seconds before its expiry at which a stored token is replaced."""
    life = int(lifetime_seconds or 0)
    return min(RENEW_BEFORE_SECONDS, life // 2) if life > 0 else RENEW_BEFORE_SECONDS


def token_lifetime(lifetime_days, max_seconds, warn=None):
    """Seconds of lifetime to ask for: 0 days = the server's maximum; more than the maximum is cut with a warning.

    When the server does not tell its maximum (no tokenconfig endpoint), 0 asks for its default lifetime.
    """
    days = int(lifetime_days or 0)
    if days < 0:
        raise TokenError(
            f"lifetime_days must be 0 (the longest lifetime the server allows) or a number of days, got {days}"
        )
    wanted = days * 86400
    if not max_seconds:
        return wanted
    if wanted == 0:
        return max_seconds
    if wanted > max_seconds:
        if warn:
            warn(
                f"lifetime_days {days} exceeds the server's maximum token lifetime for this user "
                f"({max_seconds // 3600}h, CODER_MAX_TOKEN_LIFETIME or CODER_MAX_ADMIN_TOKEN_LIFETIME for owners); "
                "using the maximum (lifetime_days: 0 always asks for it)"
            )
        return max_seconds
    return wanted


def token_family(tokens, name):
    """The tokens this module manages under ``name``: ``name`` itself and ``name-<UTC timestamp>[-n]``."""
    pat = re.compile(re.escape(name) + r"(?:-\d{14}(?:-\d+)?)?$")
    return [t for t in tokens or [] if pat.match(t.get("token_name") or "")]


def rotation_name(name, taken, now):
    """``name`` when free, else ``name-<UTC timestamp>`` (token names are unique per user, and the old token
    must stay until the Secret holds the new one)."""
    if name not in taken:
        return name
    base = "{}-{}".format(name, time.strftime("%Y%m%d%H%M%S", time.gmtime(now)))
    cand, n = base, 1
    while cand in taken:
        n += 1
        cand = f"{base}-{n}"
    return cand


def keep_token(client, store, p, check_mode=False, warn=None, add_secret=None, now=time.time):
    """Make key ``p["secret_key"]`` of Secret ``p["secret_name"]`` hold a working token of the wanted user.

    ``p`` holds coder_token's options. A stored token is reused while it authenticates as the wanted user and does
    not expire soon (:func:`renew_before`). Otherwise a new token is created (authenticating with coder_token, a
    password login, or the still valid stored token), written to the Secret, and only then are the previous tokens
    of the same name family deleted: a failure at any step never leaves the Secret holding a deleted token (a failed
    write deletes the new token again). A login session is always ended (``POST /api/v2/users/logout``), on
    success and on failure. Returns the module result; raises :class:`TokenError` with a secret-free message.
    """
    warn = warn or (lambda msg: None)
    add_secret = add_secret or (lambda value: None)
    ns, name, key = p["secret_namespace"], p["secret_name"], p["secret_key"]
    token_name = p.get("token_name") or "coderstack"
    where = f"Secret {ns}/{name} key {key}"
    secret_info = {"name": name, "namespace": ns, "key": key}
    result = {"changed": False, "reused": False, "secret": secret_info}
    token_lifetime(p.get("lifetime_days"), None)  # a negative lifetime fails before anything happens

    try:
        sec, data = store.read(ns, name)
    except Exception as e:
        raise TokenError(f"reading {where} failed: {e}; check kubeconfig/context and that the namespace exists") from e
    if sec is not None:
        secret_info["resource_version"] = sec.metadata.resource_version
    stored = data.get(key)
    add_secret(stored)
    wanted_user = p.get("username")

    before = {"secret": name, "token_valid": False}
    stored_owner = None
    reason = f"{where} holds no token"
    if stored:
        try:
            stored_owner = client.check_token(stored)
            meta = client.get_key(stored_owner["id"], token_id(stored), token=stored) if stored_owner else None
        except CoderError as e:
            if e.status != 401:
                raise TokenError(failure_message("checking the token stored in " + where, e), **result) from e
            stored_owner = None  # expired between the two calls
        if stored_owner is None:
            reason = f"the token stored in {where} is rejected by Coder (HTTP 401: expired, revoked or unknown)"
        else:
            owner_name = stored_owner.get("username")
            expires_at = (meta or {}).get("expires_at")
            expires = parse_time(expires_at)
            left = None if expires is None else expires - now()
            before.update(token_valid=True, user=owner_name, token_id=token_id(stored), expires_at=expires_at)
            if wanted_user and wanted_user not in (owner_name, stored_owner.get("id")):
                reason = f"the token stored in {where} belongs to user {owner_name}, not {wanted_user}"
            elif left is not None and left < renew_before((meta or {}).get("lifetime_seconds")):
                reason = f"the token stored in {where} expires soon ({expires_at})"
            elif p.get("force"):
                reason = "force is set"
            else:
                result.update(
                    reused=True,
                    user={"id": stored_owner.get("id"), "username": owner_name},
                    token_id=token_id(stored),
                    expires_at=expires_at,
                )
                if p.get("return_token"):
                    result["token"] = stored
                return result
    result["reason"] = reason
    diff = {"before": before, "before_header": where, "after_header": where}

    if check_mode:
        # No login in check mode (the credentials may not even exist yet on a fresh install): report the change.
        after = {
            "secret": name,
            "token_valid": True,
            "user": wanted_user or (stored_owner or {}).get("username") or "(authenticating user)",
            "token_id": "(new)",
        }
        result.update(changed=True, diff=dict(diff, after=after))
        return result

    stored_usable = stored_owner is not None and (
        not wanted_user or wanted_user in (stored_owner.get("username"), stored_owner.get("id"))
    )
    auth = p.get("coder_token")
    if not auth and not p.get("login_email"):
        if not stored_usable:
            raise TokenError(
                f"a new token is needed ({reason}) and neither coder_token nor login_email/login_password is given: "
                "pass one of them so a new token can be created",
                **result,
            )
        auth = stored  # the stored token still works: it mints its own successor
    session = None
    owner = wanted_user or "me"
    step = f"creating token {token_name} for user {owner}"
    try:
        if not auth:
            step = f"logging in as {p['login_email']} to create a token"
            try:
                session = client.login(p["login_email"], p.get("login_password"))
            except CoderError as e:
                hint = None
                if e.status == 401:
                    hint = f"the email/password of {p['login_email']} do not log in to Coder: check the credentials"
                raise TokenError(failure_message(step, e, hint), **result) from e
            add_secret(session)
            auth = session
            step = f"creating token {token_name} for user {owner}"
        client.token = auth
        me = client.get_user(owner)
        if me is None:
            raise TokenError(f"user {owner} does not exist in Coder: create it first (coder_user)", **result)
        uid = me["id"]
        result["user"] = {"id": uid, "username": me.get("username")}
        lifetime = token_lifetime(p.get("lifetime_days"), client.max_token_lifetime_seconds(uid), warn)
        tokens = client.list_tokens(uid)
        old = token_family(tokens, token_name)
        new_name = rotation_name(token_name, {t.get("token_name") for t in tokens}, now())
        new = client.create_token(uid, new_name, lifetime_seconds=lifetime)
        add_secret(new)
        new_id = token_id(new)
        try:
            stored_obj = store.write(
                ns, name, {key: new}, existing=sec, labels={"app.kubernetes.io/managed-by": "coderstack"}
            )
        except Exception as e:
            try:
                client.delete_token(uid, new_id)
                undo = f"the new token {new_id} was deleted again"
            except CoderError as de:
                undo = f"deleting the new token {new_id} failed too ({de}): delete it in Coder (Settings > Tokens)"
            raise TokenError(
                f"storing the new token in {where} failed: {e}; {undo}; the Secret still holds the previous token "
                "(nothing was deleted): fix access to the Secret and run again",
                **result,
            ) from e
        secret_info["resource_version"] = stored_obj.metadata.resource_version
        # The Secret holds the new token: the previous ones can go.
        if token_id(auth) in {t.get("id") for t in old}:
            client.token = new  # we are deleting the very token we authenticate with
        deleted = []
        for t in old:
            if t.get("id") == new_id:
                continue
            try:
                client.delete_token(uid, t["id"])
                deleted.append(t["id"])
            except CoderError as e:
                warn(
                    f"the new token is stored in {where}, but deleting the previous token {t['id']} "
                    f"({t.get('token_name')}) failed: {e}; it stays valid until {t.get('expires_at')}; the next "
                    "rotation deletes it, or delete it in Coder (Settings > Tokens)"
                )
        after = {"secret": name, "token_valid": True, "user": me.get("username"), "token_id": new_id}
        result.update(
            changed=True,
            token_id=new_id,
            token_name=new_name,
            lifetime_seconds=lifetime,
            deleted_token_ids=deleted,
            diff=dict(diff, after=after),
        )
        if p.get("return_token"):
            result["token"] = new
        return result
    except CoderError as e:
        raise TokenError(failure_message(step, e), **result) from e
    finally:
        if session:
            try:
                client.logout(session)
            except CoderError as e:
                warn(f"ending the login session of {p.get('login_email')} failed: {e}; it expires on its own")
