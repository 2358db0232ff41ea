# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of every coder_* module: one connection spec, the API token resolved once, secret-free failures.

A module stays a plain ``AnsibleModule`` (tools such as ansible-lint swap that class for a stub)::

    module = AnsibleModule(argument_spec=coder_argument_spec(name=...), supports_check_mode=True)
    secret_free(module)                # failures and warnings never carry a secret
    client = coder_client(module)      # coder_url + the token: coder_token, else the Secret token_secret

* :data:`CODER_CONNECTION_SPEC`: the options every module of the action group ``coder`` accepts (so
  ``module_defaults: {group/coderstack.platform.coder: {...}}`` works for each of them).
* :func:`resolve_token`: ``coder_token`` if given, else key ``token_key`` of Secret ``token_namespace/token_secret``
  (read through :mod:`kube`), registered with the module's masking (``module.add_secret``).
* :func:`sanitize`, :func:`secret_free`, :func:`run_main`, :func:`fail`, :func:`failure_message`.
"""

import json
import re
import sys
import traceback
from urllib.parse import quote, unquote, urlsplit

from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderClient
from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.kube import KubeError, Secrets, ServiceProxy

# Options every module of the action group `coder` takes (meta/runtime.yml); merged into each argument_spec.
CODER_CONNECTION_SPEC = {
    "coder_url": {"type": "str", "required": True, "aliases": ["url"]},
    "coder_token": {"type": "str", "no_log": True, "aliases": ["token"]},
    "token_secret": {"type": "str", "no_log": False},
    "token_namespace": {"type": "str", "no_log": False},
    "token_key": {"type": "str", "default": "token", "no_log": False},
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "int", "default": 30},
    "kube_service": {"type": "str"},
    "bypass_ratelimit": {"type": "bool", "default": False},
}
# Retries of a module's request that Coder did not answer (about 23 s of backoff: a restart of Coder behind its
# ingress, e.g. a rollout or a node under load, is waited out instead of failing the run).
MODULE_RETRIES = 6
UNAUTHENTICATED_MSG = (
    "{what} needs a Coder API token: pass coder_token, or token_secret and token_namespace naming the Kubernetes "
    "Secret that holds it (playbooks/coder_admin.yml keeps it there)"
)
NO_STORED_CREDENTIAL_MSG = (
    "the Coder API token Secret {ns}/{name} (key {key}) does not exist: run playbooks/coder_admin.yml first "
    "(site.yml does), or pass coder_token"
)


def coder_argument_spec(**extra):
    """The connection options plus the module's own (``extra`` wins, e.g. for module-specific descriptions)."""
    spec = {k: dict(v) for k, v in CODER_CONNECTION_SPEC.items()}
    spec.update(extra)
    return spec


def unset(value):
    """None for an empty option value (``ca_path: ""``, ``context: ""`` mean unset)."""
    return value if value not in ("", None) else None


def token_secret_of(params):
    """(namespace, name, key) of the token Secret named by the options, or None."""
    name = unset(params.get("token_secret"))
    if not name:
        return None
    return unset(params.get("token_namespace")), name, params.get("token_key") or "token"


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


def resolve_token(module, required=True, what="this module"):
    """The Coder API token of ``module``: ``coder_token``, else the token Secret, else None (or a failure when
    ``required``). A token read from the Secret is masked in every message (``module.add_secret``)."""
    p = module.params
    module._coder_token_secret = None
    if unset(p.get("coder_token")):
        return p["coder_token"]
    where = token_secret_of(p)
    if where is None:
        if required:
            module.fail_json(msg=UNAUTHENTICATED_MSG.format(what=what))
        return None
    ns, name, key = where
    if not ns:
        module.fail_json(msg=f"token_secret {name} needs token_namespace (the namespace of the Secret)")
    try:
        _obj, data = Secrets(unset(p.get("kubeconfig")), unset(p.get("context"))).read(ns, name)
    except KubeError as e:
        module.fail_json(msg=f"reading the Coder API token from Secret {ns}/{name} failed: {e}")
    except Exception as e:  # noqa: BLE001 - an API error (forbidden, unreachable) names the Secret
        module.fail_json(
            msg=f"reading the Coder API token from Secret {ns}/{name} failed: {e}; check kubeconfig/context and "
            "that the namespace exists"
        )
    token = data.get(key)
    if not token:
        module.fail_json(msg=NO_STORED_CREDENTIAL_MSG.format(ns=ns, name=name, key=key))
    module.add_secret(token)
    module._coder_token_secret = f"{ns}/{name} (key {key})"
    return token


def coder_client(module, token=None, need_token=True, what="this module", retries=MODULE_RETRIES):
    """A CoderClient for the module's connection options; ``token`` given = use it, else :func:`resolve_token`
    (``need_token=False``: a missing token is fine). A bad coder_url or ca_path fails the module. ``retries``: how
    often a failed idempotent request is tried again (a module that only reports what it sees uses 1)."""
    p = module.params
    if token is None:
        token = resolve_token(module, required=need_token, what=what)
    service = unset(p.get("kube_service"))
    if service:
        return _proxied_client(module, service, token)
    try:
        return CoderClient(
            p["coder_url"],
            token=token or None,
            ca_path=unset(p.get("ca_path")),
            validate_certs=p.get("validate_certs", True),
            timeout=p.get("timeout") or 30,
            retries=retries,
            bypass_ratelimit=p.get("bypass_ratelimit", False),
        )
    except (ValueError, OSError) as e:  # a bad URL, an unreadable ca_path
        module.fail_json(msg=sanitize(f"cannot use coder_url {p.get('coder_url')}: {e}", secrets_of(module)))


_KUBE_SERVICE = re.compile(
    r"^(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?):(?P<port>[a-z0-9-]+)$"
)


def _proxied_client(module, service, token):
    """A CoderClient that reaches Coder through the API server's service proxy (``kube_service``
    ``<namespace>/<service>:<port name>``), with the kubeconfig's credentials: Coder before it is exposed."""
    p = module.params
    m = _KUBE_SERVICE.match(service)
    if not m:
        module.fail_json(
            msg=f"kube_service must be <namespace>/<service>:<port name>, e.g. coder/coder:http; got {service!r}"
        )
    try:
        proxy = ServiceProxy(unset(p.get("kubeconfig")), unset(p.get("context")), m["ns"], m["name"], m["port"])
        return CoderClient(
            proxy.url,
            token=token or None,
            timeout=p.get("timeout") or 30,
            ssl_context=proxy.ssl_context,
            extra_headers=proxy.headers,
            bypass_ratelimit=p.get("bypass_ratelimit", False),
        )
    except (KubeError, ValueError, OSError) as e:
        module.fail_json(
            msg=sanitize(f"cannot reach Coder through the API server (kube_service {service}): {e}", secrets_of(module))
        )


def failure_message(what, err, hint=None, token_secret=None):
    """``<what>: <err>. <hint>`` with a default hint for the usual Coder errors; ``token_secret`` names the Secret
    the token came from (for the hint of a 401)."""
    msg = f"{what}: {err}"
    if hint is None and isinstance(err, CoderError):
        if err.status == 401 and token_secret:
            hint = (
                f"the token in Secret {token_secret} is expired or revoked: run playbooks/coder_admin.yml to "
                "renew it, or pass a valid coder_token"
            )
        elif err.status == 401:
            hint = (
                "the coder_token is missing, expired or revoked: pass a valid token "
                "(e.g. from Secret coder-admin-token, with token_secret)"
            )
        elif err.status == 403:
            hint = "the token's user lacks the permission: use an owner (or user-admin) token"
        elif err.status == 428:
            hint = (
                "bypass_ratelimit is honoured for a token of a user with the owner role only: pass the owner's "
                "token, or set bypass_ratelimit false (coderstack_coder_bypass_ratelimit in the inventory)"
            )
        elif err.status is None:
            hint = "check coder_url and that the Coder server is running (GET /healthz)"
    if hint:
        msg += ". " + hint
    return msg


def fail(module, what, err, hint=None, **kwargs):
    """fail_json naming the object and, when the cause is known, what to do (sanitized)."""
    secrets = secrets_of(module)
    msg = failure_message(what, err, hint, getattr(module, "_coder_token_secret", None))
    module.fail_json(msg=sanitize(msg, secrets), **sanitize_obj(kwargs, secrets))


def api_calls(client):
    """Coder API calls made, per HTTP method (every module returns it)."""
    return dict(client.calls)
