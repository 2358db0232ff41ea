# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Coder's REST API (``/api/v2``): every endpoint the collection uses, as a method of :class:`CoderClient`
(deployment, first user, login, users, tokens, templates and their versions and files, workspaces and their builds).

The requests themselves (token, TLS, retries, errors) are the transport's, :mod:`coder_transport`; the reconcilers in
``coder_users.py``, ``coder_tokens.py``, ``coder_templates.py`` and ``coder_workspaces.py`` call these methods, never
``request()``. :class:`CoderError` and :class:`NotCoderError` are the transport's, importable from here too.
"""

from urllib.parse import quote

from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import (
    _UNSET,
    CoderError,
    CoderTransport,
    NotCoderError,
)

__all__ = ["LOGIN_TYPES", "NIL_UUID", "SITE_ROLES", "CoderClient", "CoderError", "NotCoderError", "site_roles"]

NIL_UUID = "00000000-0000-0000-0000-000000000000"
SITE_ROLES = ("owner", "template-admin", "user-admin", "auditor")
LOGIN_TYPES = ("password", "none", "github", "oidc")


class CoderClient(CoderTransport):
    """Client for one Coder deployment: the transport plus the endpoints."""

    # ------------------------------------------------------------- deployment
    def buildinfo(self):
        return self.request("GET", "/api/v2/buildinfo", token=None)

    def coder_buildinfo(self):
        """Build info, proving that ``coder_url`` is a Coder deployment before anything secret is sent to it.

        Coder answers ``GET /api/v2/buildinfo`` (unauthenticated) with JSON carrying ``version``. Anything else
        raises :class:`NotCoderError` naming the URL, the HTTP status and content type of what answered;
        an unreachable URL raises :class:`CoderError` as usual.
        """
        path = "/api/v2/buildinfo"
        try:
            info = self.request("GET", path, token=None)
        except CoderError as e:
            if e.status is None:
                raise
            info = None
        if isinstance(info, dict) and info.get("version"):
            return info
        raise NotCoderError(self.url, path, self.last_status, self.last_content_type)

    # ------------------------------------------------------------ first user
    def has_first_user(self):
        """True once the deployment has its first (owner) user."""
        self.request("GET", "/api/v2/users/first", expected=(200, 404), token=None)
        return self.last_status == 200

    def create_first_user(self, username, email, password, name=""):
        body = {"username": username, "email": email, "password": password, "name": name or "", "trial": False}
        return self.request("POST", "/api/v2/users/first", json=body, expected=(201, 200), token=None)

    # ----------------------------------------------------------------- login
    def login(self, email, password):
        """Password login; returns a session token (raises CoderError 401 on a wrong password)."""
        res = self.request(
            "POST", "/api/v2/users/login", json={"email": email, "password": password}, expected=(201, 200), token=None
        )
        return res["session_token"]

    def logout(self, session):
        """End a login session (``POST /api/v2/users/logout`` with the session token itself)."""
        return self.request("POST", "/api/v2/users/logout", token=session)

    def me(self, token=_UNSET):
        return self.request("GET", "/api/v2/users/me", token=token)

    def check_token(self, token):
        """The user a token belongs to, or None when the token is invalid, expired or revoked."""
        try:
            return self.me(token=token)
        except CoderError as e:
            if e.status == 401:
                return None
            raise

    # ------------------------------------------------------------------ users
    def list_users(self, q=None, page_size=1000):
        """All users (paginated with limit/offset). ``q`` is Coder's search query, e.g. ``status:active``.

        Pages of 1000 users: an inventory of up to 1000 users costs one list call; larger ones page.
        """
        users = []
        offset = 0
        while True:
            params = {"limit": page_size, "offset": offset}
            if q:
                params["q"] = q
            res = self.request("GET", "/api/v2/users", params=params) or {}
            page = res.get("users") or []
            users.extend(page)
            offset += len(page)
            count = res.get("count")
            if not page or len(page) < page_size or (count is not None and offset >= count):
                return users

    def _get_or_none(self, path):
        """GET ``path``; None when Coder answers 404."""
        try:
            return self.request("GET", path)
        except CoderError as e:
            if e.status == 404:
                return None
            raise

    def get_user(self, user):
        """A user by username or id, or None when it does not exist."""
        try:
            return self.request("GET", f"/api/v2/users/{_q(user)}")
        except CoderError as e:
            if e.not_found:
                return None
            raise

    def create_user(self, username, email, name="", password=None, login_type="password", status="active", orgs=None):
        body = {
            "username": username,
            "email": email,
            "name": name or "",
            "login_type": login_type,
            "organization_ids": list(orgs or [NIL_UUID]),  # nil UUID = the default organization
        }
        if password:
            body["password"] = password
        if status:
            body["user_status"] = status
        return self.request("POST", "/api/v2/users", json=body, expected=(201, 200))

    def update_profile(self, user, username, name, avatar_url=""):
        """Username and name; ``avatar_url`` is sent back as it is (Coder >= 2.35 applies it to password and none
        users, so leaving it out would clear their avatar)."""
        body = {"username": username, "name": name or "", "avatar_url": avatar_url or ""}
        return self.request("PUT", f"/api/v2/users/{_q(user)}/profile", json=body)

    def update_roles(self, user, roles):
        """Set the site-wide roles (``member`` is implicit and never listed)."""
        return self.request("PUT", f"/api/v2/users/{_q(user)}/roles", json={"roles": sorted(roles)})

    def suspend_user(self, user):
        return self.request("PUT", f"/api/v2/users/{_q(user)}/status/suspend")

    def activate_user(self, user):
        return self.request("PUT", f"/api/v2/users/{_q(user)}/status/activate")

    def delete_user(self, user):
        return self.request("DELETE", f"/api/v2/users/{_q(user)}", expected=(200, 204))

    def update_login_type(self, user, login_type):
        """Change a user's login type (newer Coder versions; older ones answer 405 and CoderError says so)."""
        try:
            return self.request("PUT", f"/api/v2/users/{_q(user)}/login-type", json={"login_type": login_type})
        except CoderError as e:
            if e.status in (404, 405):
                e.message = (
                    "this Coder version has no API to change a user's login type (%s); "
                    "delete and recreate the user instead" % (e.message or "method not allowed")
                )
                if login_type == "none":
                    e.message += (
                        " (since Coder 2.36 login_type none is for service accounts only, a Premium feature, and "
                        "the upgrade to 2.36 made existing none users password users: set login_type password, oidc "
                        "or github)"
                    )
            raise

    # ----------------------------------------------------------------- tokens
    def create_token(self, user, token_name, lifetime_seconds=0, scope="all"):
        """A new API token; returns the secret key. lifetime 0 = the server's default token lifetime."""
        body = {"token_name": token_name, "scope": scope, "lifetime": int(lifetime_seconds or 0) * 10**9}
        res = self.request("POST", f"/api/v2/users/{_q(user)}/keys/tokens", json=body, expected=(201, 200))
        return res["key"]

    def max_token_lifetime_seconds(self, user="me"):
        """The server's maximum token lifetime for this user in seconds, or None when the server does not say.

        ``GET /api/v2/users/{user}/keys/tokens/tokenconfig`` answers ``{"max_token_lifetime": <ns>}`` (codersdk
        TokenConfig); owners get ``CODER_MAX_ADMIN_TOKEN_LIFETIME`` (168h by default since v2.30), other users
        ``CODER_MAX_TOKEN_LIFETIME``. Servers without the endpoint (404) give None.
        """
        try:
            res = self.request("GET", f"/api/v2/users/{_q(user)}/keys/tokens/tokenconfig") or {}
        except CoderError as e:
            if e.status in (404, 405):
                return None
            raise
        ns = res.get("max_token_lifetime") if isinstance(res, dict) else None
        return int(ns) // 10**9 if ns else None

    def get_key(self, user, key_id, token=_UNSET):
        """An API key's metadata (``expires_at``, ``lifetime_seconds``, ``token_name``; never the secret)."""
        return self.request("GET", f"/api/v2/users/{_q(user)}/keys/{_q(key_id)}", token=token)

    def list_tokens(self, user="me"):
        """Every token of the user, expired ones included (Coder >= 2.35 leaves them out unless asked, yet their names
        stay taken and rotation deletes them; older servers ignore the parameter)."""
        return self.request("GET", f"/api/v2/users/{_q(user)}/keys/tokens?include_expired=true") or []

    def delete_token(self, user, key_id):
        return self.request("DELETE", f"/api/v2/users/{_q(user)}/keys/{_q(key_id)}", expected=(200, 204))

    # -------------------------------------------------------------- templates
    def list_templates(self, org=None):
        """Templates of every organization, or of ``org`` (a name, an id or ``default``)."""
        if org:
            return self.request("GET", f"/api/v2/organizations/{_q(org)}/templates") or []
        return self.request("GET", "/api/v2/templates") or []

    def get_template(self, org, name):
        """A template by organization and name, or None."""
        return self._get_or_none(f"/api/v2/organizations/{_q(org)}/templates/{_q(name)}")

    def create_template(self, org, name, version_id, settings=None):
        body = {"name": name, "template_version_id": version_id}
        body.update(settings or {})
        return self.request("POST", f"/api/v2/organizations/{_q(org)}/templates", json=body, expected=(200, 201))

    def update_template(self, template_id, body):
        """PATCH the template's settings (Coder replaces every field it is sent: send the whole set)."""
        return self.request("PATCH", f"/api/v2/templates/{_q(template_id)}", json=body, expected=(200, 304))

    def delete_template(self, template_id):
        return self.request("DELETE", f"/api/v2/templates/{_q(template_id)}", expected=(200, 204))

    def promote_template_version(self, template_id, version_id):
        """Make ``version_id`` the template's active version."""
        return self.request("PATCH", f"/api/v2/templates/{_q(template_id)}/versions", json={"id": version_id})

    def template_versions(self, template_id):
        return self.request("GET", f"/api/v2/templates/{_q(template_id)}/versions") or []

    def get_template_version(self, version_id):
        return self.request("GET", f"/api/v2/templateversions/{_q(version_id)}")

    def template_version_logs(self, version_id):
        return self.request("GET", f"/api/v2/templateversions/{_q(version_id)}/logs") or []

    def template_version_variables(self, version_id):
        return self.request("GET", f"/api/v2/templateversions/{_q(version_id)}/variables") or []

    def cancel_template_version(self, version_id):
        """Cancel the version's import job (``PATCH /api/v2/templateversions/{id}/cancel``)."""
        return self.request("PATCH", f"/api/v2/templateversions/{_q(version_id)}/cancel", expected=(200, 204))

    def provisioner_daemon(self, org, daemon_id):
        """The provisioner daemon (``last_seen_at``, ``status``), offline ones included, or None; ``last_date`` then
        holds Coder's clock."""
        found = self.request(
            "GET", f"/api/v2/organizations/{_q(org)}/provisionerdaemons", params={"ids": daemon_id, "offline": "true"}
        )
        return next((d for d in found or [] if d.get("id") == daemon_id), None)

    def create_template_version(self, org, body):
        """``POST /api/v2/organizations/{org}/templateversions`` with a codersdk.CreateTemplateVersionRequest."""
        return self.request("POST", f"/api/v2/organizations/{_q(org)}/templateversions", json=body, expected=(200, 201))

    # ------------------------------------------------------------------ files
    def upload_file(self, data, content_type="application/x-tar"):
        """Upload a file (a template's tar); returns its id."""
        res = self.request(
            "POST", "/api/v2/files", data=data, headers={"Content-Type": content_type}, expected=(200, 201)
        )
        # codersdk.UploadResponse: the file's id is in the JSON field "hash"
        return res.get("hash") or res.get("id")

    def download_file(self, file_id):
        """An uploaded file's bytes (b"" when the answer is not a file)."""
        data = self.request("GET", f"/api/v2/files/{_q(file_id)}", headers={"Accept": "application/x-tar"})
        return data if isinstance(data, (bytes, bytearray)) else b""

    # ----------------------------------------------------------------- health
    def health_report(self):
        """A fresh health report (``GET /api/v2/debug/health?force=true``, owners only; codersdk HealthcheckReport)."""
        return self.request("GET", "/api/v2/debug/health", params={"force": "true"}) or {}

    # ------------------------------------------------------------- workspaces
    def list_workspaces(self):
        """Every workspace the token may see (an owner's: all), each with its latest build and agents."""
        return (self.request("GET", "/api/v2/workspaces") or {}).get("workspaces") or []

    def get_workspace(self, owner, name):
        """A workspace by owner and name, or None."""
        return self._get_or_none(f"/api/v2/users/{_q(owner)}/workspace/{_q(name)}")

    def create_workspace(self, owner, name, template_id, rich_parameter_values, ttl_ms=None):
        body = {"name": name, "template_id": template_id, "rich_parameter_values": list(rich_parameter_values)}
        if ttl_ms is not None:
            body["ttl_ms"] = ttl_ms
        return self.request("POST", f"/api/v2/users/{_q(owner)}/workspaces", json=body, expected=(200, 201))

    def create_workspace_build(self, workspace_id, transition, rich_parameter_values=None, template_version_id=None):
        body = {"transition": transition}
        if rich_parameter_values:
            body["rich_parameter_values"] = list(rich_parameter_values)
        if template_version_id:
            body["template_version_id"] = template_version_id
        return self.request("POST", f"/api/v2/workspaces/{_q(workspace_id)}/builds", json=body, expected=(200, 201))

    def workspace_build_parameters(self, build_id):
        return self.request("GET", f"/api/v2/workspacebuilds/{_q(build_id)}/parameters") or []

    def workspace_build_logs(self, build_id):
        return self.request("GET", f"/api/v2/workspacebuilds/{_q(build_id)}/logs") or []


def _q(part):
    return quote(str(part), safe="")


def site_roles(user):
    """Sorted site-wide role names of a user object (organization roles and the implicit member excluded)."""
    out = []
    for r in user.get("roles") or []:
        if isinstance(r, dict):
            if r.get("organization_id"):
                continue
            out.append(r.get("name"))
        else:
            out.append(r)
    return sorted(n for n in out if n and n != "member")
