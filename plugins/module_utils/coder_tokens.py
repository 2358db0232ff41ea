# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Coder API token kept in a Kubernetes Secret (coder_token): plan (reuse or replace), then rotate.

* :func:`plan_token` reads key ``token_key`` of Secret ``token_namespace/token_secret`` and asks Coder whether the
  stored token still works for the wanted user and does not expire soon: a :class:`TokenPlan` that either reuses
  it or says why a new one is needed.
* :func:`rotate_token` creates the new token (authenticating with coder_token, a password login, or the still
  valid stored token), writes it to the Secret, and only then deletes the previous tokens of the same name family.
* :func:`keep_token` does both (check mode: the plan only).
"""

import calendar
import re
import time

from ansible_collections.coderstack.platform.plugins.module_utils.coder_module import failure_message
from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.kube import MANAGED_BY, resource_version

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


class TokenPlan:
    """The stored token and what to do about it: ``reuse`` it, or replace it for ``reason``."""

    def __init__(self, p):
        self.ns, self.name, self.key = p["token_namespace"], p["token_secret"], p["token_key"]
        self.where = f"Secret {self.ns}/{self.name} key {self.key}"
        self.token_name = p.get("token_name") or "coderstack"
        self.wanted_user = p.get("username")
        self.secret = None  # the Secret object (dict), None when it does not exist
        self.stored = None  # the token in it
        self.stored_owner = None  # the user the stored token authenticates as (None: no token or rejected)
        self.meta = None  # the stored token's key metadata
        self.reuse = False
        self.reason = f"{self.where} holds no token"
        self.before = {"secret": self.name, "token_valid": False}

    @property
    def stored_usable(self):
        """The stored token works and belongs to the wanted user: it may mint its own successor."""
        owner = self.stored_owner
        return owner is not None and (
            not self.wanted_user or self.wanted_user in (owner.get("username"), owner.get("id"))
        )


def plan_token(client, store, p, result, add_secret=None, now=time.time):
    """Read the Secret and check the stored token (GET users/me, GET the key's metadata); a :class:`TokenPlan`."""
    add_secret = add_secret or (lambda value: None)
    plan = TokenPlan(p)
    try:
        plan.secret, data = store.read(plan.ns, plan.name)
    except Exception as e:
        raise TokenError(
            f"reading {plan.where} failed: {e}; check kubeconfig/context and that the namespace exists"
        ) from e
    if plan.secret is not None:
        result["secret"]["resource_version"] = resource_version(plan.secret)
    plan.stored = data.get(plan.key)
    add_secret(plan.stored)
    if not plan.stored:
        return plan
    try:
        plan.stored_owner = client.check_token(plan.stored)
        if plan.stored_owner:
            plan.meta = client.get_key(plan.stored_owner["id"], token_id(plan.stored), token=plan.stored)
    except CoderError as e:
        if e.status != 401:
            raise TokenError(failure_message("checking the token stored in " + plan.where, e), **result) from e
        plan.stored_owner = None  # expired between the two calls
    if plan.stored_owner is None:
        plan.reason = f"the token stored in {plan.where} is rejected by Coder (HTTP 401: expired, revoked or unknown)"
        return plan
    _judge_stored(plan, p, now())
    return plan


def _judge_stored(plan, p, now):
    """Reuse the working stored token, unless it belongs to another user, expires soon or ``force`` is set."""
    owner = plan.stored_owner
    owner_name = owner.get("username")
    expires_at = (plan.meta or {}).get("expires_at")
    expires = parse_time(expires_at)
    left = None if expires is None else expires - now
    plan.before.update(token_valid=True, user=owner_name, token_id=token_id(plan.stored), expires_at=expires_at)
    if plan.wanted_user and plan.wanted_user not in (owner_name, owner.get("id")):
        plan.reason = f"the token stored in {plan.where} belongs to user {owner_name}, not {plan.wanted_user}"
    elif left is not None and left < renew_before((plan.meta or {}).get("lifetime_seconds")):
        plan.reason = f"the token stored in {plan.where} expires soon ({expires_at})"
    elif p.get("force"):
        plan.reason = "force is set"
    else:
        plan.reuse = True
        plan.reason = None


def keep_token(client, store, p, check_mode=False, warn=None, add_secret=None, now=time.time):
    """Make key ``p["token_key"]`` of Secret ``p["token_secret"]`` hold a working token of the wanted user.

    ``p`` holds coder_token's options. A stored token is reused while it authenticates as the wanted user and does
    not expire soon (:func:`renew_before`). Otherwise :func:`rotate_token` replaces it: a failure at any step never
    leaves the Secret holding a deleted token. A login session is always ended, on success and on failure.
    Returns the module result; raises :class:`TokenError` with a secret-free message.
    """
    warn = warn or (lambda msg: None)
    add_secret = add_secret or (lambda value: None)
    token_lifetime(p.get("lifetime_days"), None)  # a negative lifetime fails before anything happens
    secret_info = {"name": p["token_secret"], "namespace": p["token_namespace"], "key": p["token_key"]}
    result = {"changed": False, "reused": False, "secret": secret_info}
    plan = plan_token(client, store, p, result, add_secret, now)
    if plan.reuse:
        owner = plan.stored_owner
        result.update(
            reused=True,
            user={"id": owner.get("id"), "username": owner.get("username")},
            token_id=token_id(plan.stored),
            expires_at=(plan.meta or {}).get("expires_at"),
        )
        if p.get("return_token"):
            result["token"] = plan.stored
        return result
    result["reason"] = plan.reason
    if check_mode:
        # No login in check mode (the credentials may not even exist yet on a fresh install): report the change.
        after = {
            "secret": plan.name,
            "token_valid": True,
            "user": plan.wanted_user or (plan.stored_owner or {}).get("username") or "(authenticating user)",
            "token_id": "(new)",
        }
        result.update(changed=True, diff=_diff(plan, after))
        return result
    return rotate_token(client, store, p, plan, result, warn, add_secret, now)


def _diff(plan, after):
    return {"before": plan.before, "after": after, "before_header": plan.where, "after_header": plan.where}


def _credential(p, plan, result):
    """The token to create the new one with (coder_token or the stored token), or None for a password login."""
    if p.get("coder_token"):
        return p["coder_token"]
    if p.get("login_email"):
        return None
    if not plan.stored_usable:
        raise TokenError(
            f"a new token is needed ({plan.reason}) and neither coder_token nor login_email/login_password is given: "
            "pass one of them so a new token can be created",
            **result,
        )
    return plan.stored  # the stored token still works: it mints its own successor


def _login(client, p, result):
    step = f"logging in as {p['login_email']} to create a token"
    try:
        return client.login(p["login_email"], p.get("login_password"))
    except CoderError as e:
        hint = None
        if e.status == 401:
            hint = f"the email/password of {p['login_email']} do not log in to Coder: check the credentials"
        raise TokenError(failure_message(step, e, hint), **result) from e


def rotate_token(client, store, p, plan, result, warn, add_secret, now=time.time):
    """Create a new token, store it in the Secret, then delete the previous ones (create-then-delete)."""
    auth = _credential(p, plan, result)
    session = None
    owner = plan.wanted_user or "me"
    step = f"creating token {plan.token_name} for user {owner}"
    try:
        if not auth:
            session = auth = _login(client, p, result)
            add_secret(session)
        client.token = auth
        me = client.get_user(owner)
        if me is None:
            raise TokenError(f"user {owner} does not exist in Coder: create it first (coder_user)", **result)
        result["user"] = {"id": me["id"], "username": me.get("username")}
        new, new_name, lifetime, old = _create(client, p, plan, me["id"], warn, now)
        add_secret(new)
        _store(client, store, plan, me["id"], new, result)
        if token_id(auth) in {t.get("id") for t in old}:
            client.token = new  # we are deleting the very token we authenticate with
        deleted = _delete_previous(client, plan, me["id"], old, token_id(new), warn)
        after = {"secret": plan.name, "token_valid": True, "user": me.get("username"), "token_id": token_id(new)}
        result.update(
            changed=True,
            token_id=token_id(new),
            token_name=new_name,
            lifetime_seconds=lifetime,
            deleted_token_ids=deleted,
            diff=_diff(plan, after),
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


def _create(client, p, plan, uid, warn, now):
    """(new token, its name, its lifetime, the previous tokens of the family)."""
    lifetime = token_lifetime(p.get("lifetime_days"), client.max_token_lifetime_seconds(uid), warn)
    tokens = client.list_tokens(uid)
    old = token_family(tokens, plan.token_name)
    new_name = rotation_name(plan.token_name, {t.get("token_name") for t in tokens}, now())
    return client.create_token(uid, new_name, lifetime_seconds=lifetime), new_name, lifetime, old


def _store(client, store, plan, uid, new, result):
    """Write the new token to the Secret; a failed write deletes the new token again (the old one stays)."""
    new_id = token_id(new)
    try:
        stored_obj = store.write(plan.ns, plan.name, {plan.key: new}, existing=plan.secret, labels=MANAGED_BY)
    except Exception as e:
        try:
            client.delete_token(uid, new_id)
            undo = f"the new token {new_id} was deleted again"
        except CoderError as de:
            undo = f"deleting the new token {new_id} failed too ({de}): delete it in Coder (Settings > Tokens)"
        raise TokenError(
            f"storing the new token in {plan.where} failed: {e}; {undo}; the Secret still holds the previous token "
            "(nothing was deleted): fix access to the Secret and run again",
            **result,
        ) from e
    result["secret"]["resource_version"] = resource_version(stored_obj)


def _delete_previous(client, plan, uid, old, new_id, warn):
    """Delete the previous tokens of the family (the Secret holds the new one); a failure only warns."""
    deleted = []
    for t in old:
        if t.get("id") == new_id:
            continue
        try:
            client.delete_token(uid, t["id"])
            deleted.append(t["id"])
        except CoderError as e:
            warn(
                f"the new token is stored in {plan.where}, but deleting the previous token {t['id']} "
                f"({t.get('token_name')}) failed: {e}; it stays valid until {t.get('expires_at')}; the next "
                "rotation deletes it, or delete it in Coder (Settings > Tokens)"
            )
    return deleted
