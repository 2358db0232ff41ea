# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Coder templates from a directory: deterministic tar, content hash, import, promotion (used by coder_template).

* :func:`build_tar` packs a template directory the same way every time (sorted paths, fixed mtime, uid/gid 0,
  no user/group names, modes 0644/0755), so equal content gives equal bytes and an equal sha256.
* :func:`content_hash` = sha256 over the tar's sha256 and the canonical JSON of the template variables: what
  decides "unchanged". It is written into the message of every version this module creates
  (``coderstack-content: sha256:<hex>``); an unchanged template costs two read calls (the template by name and
  its active version), no upload.
* :class:`TemplateSync` plans (reads only: what differs) and applies (upload, version, import wait with backoff,
  promotion, settings, deletion) through the CoderClient's template methods.
"""

import datetime
import email.utils
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import time

from ansible_collections.coderstack.platform.plugins.module_utils.coder_transport import CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.waiter import AGAIN, poll

# Fixed mtime of every tar member (2000-01-01T00:00:00Z): a tar of the same files is always the same bytes.
TAR_MTIME = 946684800
# Never uploaded: Terraform's working files and VCS metadata (they change without the template changing).
EXCLUDE_DIRS = frozenset([".terraform", ".git", ".hg", ".svn", "__pycache__"])
EXCLUDE_FILES = frozenset(["terraform.tfstate", "terraform.tfstate.backup", ".DS_Store"])
EXCLUDE_SUFFIXES = (".tfstate", ".tfplan", ".swp", "~")
MESSAGE_MARK = "coderstack-content: sha256:"
_MARK_RE = re.compile(re.escape(MESSAGE_MARK) + r"([0-9a-f]{64})")
TERMINAL = ("succeeded", "failed", "canceled")
# Seconds between two looks at the provisioner of a running import job (is it still reporting?)
ORPHAN_CHECK_EVERY = 15.0
# A provisioner reports to Coder every minute; Coder calls one stale 90 s after its last report (provisionerdserver's
# StaleInterval). Measured on Coder's own clock (the Date of its answer), so no clock of this host is involved.
PROVISIONER_STALE_SECONDS = 90


def _rfc3339(text):
    """Seconds since the epoch of Coder's RFC 3339 time (nanoseconds allowed), or None."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text or "")
    if not m:
        return None
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        stamp = datetime.datetime.fromisoformat(m.group(1) + zone).timestamp()
    except ValueError:
        return None
    return stamp + float("0." + m.group(2)) if m.group(2) else stamp


def daemon_gone(daemon, server_date):
    """Whether DAEMON stopped reporting: its last report is more than PROVISIONER_STALE_SECONDS older than
    SERVER_DATE (an HTTP Date header of Coder's). Anything unreadable: not gone."""
    seen = _rfc3339(daemon.get("last_seen_at"))
    try:
        now = email.utils.parsedate_to_datetime(server_date).timestamp() if server_date else None
    except (TypeError, ValueError):
        now = None
    return seen is not None and now is not None and now - seen > PROVISIONER_STALE_SECONDS


# Template settings this module manages: option name -> (API field, converter from option to API value)
SETTINGS = {
    "display_name": ("display_name", str),
    "description": ("description", str),
    "icon": ("icon", str),
    "default_ttl": ("default_ttl_ms", lambda s: int(s) * 1000),
    "activity_bump": ("activity_bump_ms", lambda s: int(s) * 1000),
    "allow_user_cancel_workspace_jobs": ("allow_user_cancel_workspace_jobs", bool),
    "require_active_version": ("require_active_version", bool),
    "deprecation_message": ("deprecation_message", str),
}
# Fields of the full PATCH /api/v2/templates/{id} body (Coder replaces every field it is sent).
PATCH_FIELDS = (
    "name",
    "display_name",
    "description",
    "icon",
    "default_ttl_ms",
    "activity_bump_ms",
    "autostop_requirement",
    "autostart_requirement",
    "allow_user_autostart",
    "allow_user_autostop",
    "allow_user_cancel_workspace_jobs",
    "failure_ttl_ms",
    "time_til_dormant_ms",
    "time_til_dormant_autodelete_ms",
    "require_active_version",
    "deprecation_message",
    "max_port_share_level",
)


class TemplateError(Exception):
    """A template cannot be synced; the message says what failed and what to do."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = result


# ------------------------------------------------------------------------------------------------ packing
def _excluded(name, is_dir):
    if is_dir:
        return name in EXCLUDE_DIRS
    return name in EXCLUDE_FILES or name.endswith(EXCLUDE_SUFFIXES)


def template_files(directory):
    """Sorted relative POSIX paths of the files to upload (symlinks followed; exclusions applied)."""
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise TemplateError(f"template directory {directory} does not exist or is not a directory")
    out = []
    for root, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not _excluded(d, True))
        for f in files:
            if _excluded(f, False):
                continue
            full = os.path.join(root, f)
            if not os.path.isfile(full):  # broken symlink, socket, ...
                continue
            out.append(os.path.relpath(full, directory).replace(os.sep, "/"))
    return sorted(out)


def build_tar(directory):
    """(tar bytes, {path: sha256 of the file}) of a template directory, byte-for-byte reproducible."""
    directory = os.path.abspath(directory)
    files = template_files(directory)
    if not any(f.endswith(".tf") or f.endswith(".tf.json") for f in files):
        raise TemplateError(f"template directory {directory} has no .tf file: is it the right directory?")
    dirs = set()
    for f in files:
        parts = f.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    manifest = {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(dirs | set(files)):
            if name in dirs:
                info = _tarinfo(name, tarfile.DIRTYPE, 0o755)
                tar.addfile(info)
                continue
            full = os.path.join(directory, *name.split("/"))
            with open(full, "rb") as fh:
                data = fh.read()
            executable = os.stat(full).st_mode & stat.S_IXUSR
            info = _tarinfo(name, tarfile.REGTYPE, 0o755 if executable else 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            manifest[name] = hashlib.sha256(data).hexdigest()
    return buf.getvalue(), manifest


def _tarinfo(name, kind, mode):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = TAR_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def tar_manifest(data):
    """{path: sha256} of the regular files in a tar (what a version on the server contains)."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for m in tar.getmembers():
            if m.isfile():
                fh = tar.extractfile(m)
                out[m.name.lstrip("./")] = hashlib.sha256(fh.read() if fh else b"").hexdigest()
    return out


def variable_values(variables):
    """Template variables as Coder wants them: sorted [{"name", "value"}] with string values
    (bools as true/false, lists and maps as JSON: what Terraform parses for those types)."""
    out = []
    for name in sorted(variables or {}):
        v = variables[name]
        if isinstance(v, bool):
            s = "true" if v else "false"
        elif isinstance(v, (int, float)):
            s = str(v)
        elif isinstance(v, (list, dict)):
            s = json.dumps(v, sort_keys=True, separators=(",", ":"))
        elif v is None:
            s = ""
        else:
            s = str(v)
        out.append({"name": str(name), "value": s})
    return out


def content_hash(tar_bytes, variables):
    """sha256 (hex) of the tar's sha256 plus the canonical variable values: equal hash = nothing to upload."""
    h = hashlib.sha256()
    h.update(b"coderstack-template-v1\n")
    h.update(hashlib.sha256(tar_bytes).hexdigest().encode())
    h.update(b"\n")
    h.update(json.dumps(variable_values(variables), sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def hash_from_message(message):
    m = _MARK_RE.search(message or "")
    return m.group(1) if m else None


def version_name(chash, now=None):
    """A unique, valid version name that still shows the content: <hash12>-<UTC timestamp>."""
    return "{}-{}".format(chash[:12], time.strftime("%Y%m%d%H%M%S", time.gmtime(now)))


def files_diff(before, after):
    """{"added": [...], "removed": [...], "modified": [...]} between two manifests."""
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "modified": sorted(p for p in set(before) & set(after) if before[p] != after[p]),
    }


def wanted_settings(params):
    """{API field: value} of the settings the caller manages (options left unset are not managed)."""
    out = {}
    for opt, (field, conv) in SETTINGS.items():
        if params.get(opt) is not None:
            out[field] = conv(params[opt])
    return out


def settings_changes(template, wanted):
    """{API field: (current, wanted)} for the managed settings that differ on the template."""
    changes = {}
    for field, value in wanted.items():
        cur = template.get(field)
        if field == "deprecation_message":
            cur = template.get("deprecation_message") or ""
        if cur != value:
            changes[field] = (cur, value)
    return changes


def log_tail(logs, lines=40):
    """The provisioner's output worth reading: error-level lines plus the last ``lines`` lines."""
    logs = logs or []
    out = [entry.get("output", "") for entry in logs]
    errs = [entry.get("output", "") for entry in logs if entry.get("log_level") == "error"]
    tail = out[-lines:]
    picked = [e for e in errs if e not in tail] + tail
    return [s for s in picked if s and s.strip()]


def terraform_errors(lines, limit=5):
    """Terraform's own error summaries ("Error: ...", with the line after when it says where) from log lines."""
    out = []
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith("Error:"):
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            out.append(text + (" " + nxt if nxt.startswith("on ") else ""))
    return list(dict.fromkeys(out))[:limit]


# ------------------------------------------------------------------------------------------------ API work
def settings_body(template, changes):
    """The full PATCH body of a template: its current fields (Coder replaces every field it is sent) with
    ``changes`` ({API field: (current, wanted)}) applied."""
    body = {f: template[f] for f in PATCH_FIELDS if f in template}
    if "deprecation_message" in body and body["deprecation_message"] is None:
        body["deprecation_message"] = ""
    for field, (_current, value) in changes.items():
        body[field] = value
    return body


class TemplatePlan:
    """What syncing one template does: the packed content, what Coder holds, and what differs.

    ``content_changed``: a new version must be uploaded and imported; ``changes``: the template settings to PATCH;
    ``result``: the module result as far as the plan knows it (check mode returns it as is)."""

    def __init__(self, name, variables, settings, activate):
        self.name = name
        self.variables = variables
        self.settings = settings
        self.activate = activate
        self.tar_bytes = b""
        self.chash = None
        self.template = None
        self.content_changed = False
        self.changes = {}
        self.result = {}

    @property
    def changed(self):
        return self.template is None or self.content_changed or bool(self.changes)


class TemplateSync:
    """Create, update or delete one template through a CoderClient: :meth:`plan` (reads only), :meth:`apply`."""

    def __init__(self, client, organization="default", log=None, sleep=time.sleep, clock=time.monotonic):
        self.client = client
        self.org = organization or "default"
        self.progress = []
        self._log = log
        self._sleep = sleep
        self._clock = clock

    def note(self, text):
        self.progress.append(text)
        if self._log:
            self._log(text)

    # --- the whole job
    def sync(self, name, directory, check_mode=False, **kwargs):
        """Make template ``name`` carry the content of ``directory`` with ``variables`` and ``settings``.

        ``kwargs``: those of :meth:`plan` and :meth:`apply`. Returns a result dict (``changed``, ``uploaded``,
        ``template``, ``version``, ``files_changed``, ``variables_changed``, ``settings_changed``, ``diff`` when
        ``want_diff``). Check mode returns the plan's result.
        """
        apply_args = {k: kwargs.pop(k) for k in ("message", "import_timeout", "tags") if k in kwargs}
        plan = self.plan(name, directory, **kwargs)
        if check_mode or not plan.changed:
            return plan.result
        return self.apply(plan, **apply_args)

    def remove(self, name, check_mode=False):
        """Delete template ``name``; returns the template deleted (or that would be), None when absent."""
        template = self.client.get_template(self.org, name)
        if template and not check_mode:
            self.client.delete_template(template["id"])
        return template

    def plan(self, name, directory, variables=None, settings=None, activate=True, want_diff=False, known=None):
        """Pack ``directory`` and compare with the template's active version: a :class:`TemplatePlan`.

        The unchanged path costs two GETs (the template, its active version), or one when ``known`` is the template
        as Coder's template list returned it in this run; the changed path also reads what the active version holds
        (its files and variables) to say what changed."""
        plan = TemplatePlan(name, variables or {}, settings or {}, activate)
        plan.tar_bytes, manifest = build_tar(directory)
        plan.chash = content_hash(plan.tar_bytes, plan.variables)
        plan.result = result = {
            "changed": False,
            "uploaded": False,
            "content_hash": plan.chash,
            "files": sorted(manifest),
            "files_changed": {},
            "variables_changed": [],
            "settings_changed": [],
            "promoted": False,
            "created": False,
        }
        if known and known.get("name") == name and known.get("active_version_id"):
            plan.template = template = known
        else:
            plan.template = template = self.client.get_template(self.org, name)
        active = self.client.get_template_version(template["active_version_id"]) if template else None
        plan.content_changed = hash_from_message(active.get("message")) != plan.chash if active else True
        plan.changes = settings_changes(template, plan.settings) if template else {}
        if template and plan.content_changed and not activate and self._has_version(template["id"], plan.chash):
            plan.content_changed = False  # imported before and deliberately not promoted (activate=false)
        result["settings_changed"] = sorted(plan.changes)
        result["template"] = _template_view(template)
        result["version"] = _version_view(active)
        if not plan.changed:
            return plan  # the unchanged path: one or two GETs, nothing else
        self._describe_changes(plan, manifest, active, want_diff)
        result["changed"] = True
        return plan

    def _describe_changes(self, plan, manifest, active, want_diff):
        """files_changed, variables_changed and (``want_diff``) the diff of a plan that changes something."""
        template, result, changes = plan.template, plan.result, plan.changes
        before_vars, before_files = {}, {}
        if template and plan.content_changed:
            # what the active version holds, to say which files and variables changed (changed path only)
            before_files = self._active_manifest(active)
            before_vars = self._active_variables(active)
        after_vars = {v["name"]: v["value"] for v in variable_values(plan.variables)}
        # a variable not given keeps (or falls back to) its default: compare like with like
        for vname, (_value, default) in before_vars.items():
            after_vars.setdefault(vname, default)
        before_vars = {vname: value for vname, (value, _default) in before_vars.items()}
        if plan.content_changed:
            result["files_changed"] = files_diff(before_files, manifest)
            result["variables_changed"] = sorted(
                k for k in set(before_vars) | set(after_vars) if before_vars.get(k) != after_vars.get(k)
            )
        if want_diff:
            name = plan.name
            result["diff"] = {
                "before_header": f"template {name}" + (" (active version)" if template else " (absent)"),
                "after_header": f"template {name} (wanted)",
                "before": _diff_doc(before_files, before_vars, {f: c for f, (c, _wanted) in changes.items()}, template),
                "after": _diff_doc(manifest, after_vars, {f: w for f, (_current, w) in changes.items()}, True),
            }

    def apply(self, plan, message="", import_timeout=900, tags=None):
        """Upload and import a new version when the content changed, then create the template, or promote the
        version and PATCH the changed settings. Returns the plan's result, updated."""
        result, template = plan.result, plan.template
        new_version = None
        if plan.content_changed:
            new_version = self._import_version(plan, message, import_timeout, tags)
        if not template:
            template = self.client.create_template(self.org, plan.name, new_version["id"], plan.settings)
            result["created"] = True
            result["promoted"] = True
        else:
            if new_version is not None and plan.activate:
                self.client.promote_template_version(template["id"], new_version["id"])
                template = dict(template, active_version_id=new_version["id"])
                result["promoted"] = True
            if plan.changes:
                res = self.client.update_template(template["id"], settings_body(template, plan.changes))
                changed = {f: v for f, (_current, v) in plan.changes.items()}
                template = res if isinstance(res, dict) else dict(template, **changed)
        result["template"] = _template_view(template)
        return result

    def _import_version(self, plan, message, import_timeout, tags):
        """Upload the tar, create a version carrying the content hash, wait for its import; a failed import raises
        :class:`TemplateError` with the provisioner's log."""
        result, template = plan.result, plan.template
        file_id = self.client.upload_file(plan.tar_bytes)
        result["uploaded"] = True
        msg = MESSAGE_MARK + plan.chash
        if message:
            msg = message.rstrip() + "\n\n" + msg
        body = {
            "name": version_name(plan.chash),
            "message": msg,
            "storage_method": "file",
            "file_id": file_id,
            "provisioner": "terraform",
            "tags": dict(tags or {}),
            "user_variable_values": variable_values(plan.variables),
        }
        if template:
            body["template_id"] = template["id"]
        version = self.client.create_template_version(self.org, body)
        self.note(f"uploaded {len(plan.tar_bytes)} bytes, created version {version.get('name')}")
        t0 = self._clock()
        version = self.wait_import(version, timeout=import_timeout)
        result["import_seconds"] = round(self._clock() - t0, 2)
        result["version"] = _version_view(version)
        if (version.get("job") or {}).get("status") != "succeeded":
            raise self._import_failure(plan.name, version, template, result)
        return version

    def wait_import(self, version, timeout=900, first_delay=0.5, max_delay=5.0):
        """Poll the version's import job until it ends; returns the final version object. A running job whose
        provisioner stopped reporting (Coder restarted under it) is canceled and raises: Coder would only fail it
        after its hung-job timeout (5 minutes), and the next run imports the version anew."""
        vid = version["id"]
        last, worker_checked = [None], [0.0]

        def check(v, waited):
            job = v.get("job") or {}
            status = job.get("status")
            if last[-1:] != [status]:
                self.note(f"import job of version {v.get('name')}: {status} after {waited:.1f}s")
                last.append(status)
            if status in TERMINAL:
                return v
            if status == "running" and waited - worker_checked[0] >= ORPHAN_CHECK_EVERY:
                worker_checked[0] = waited
                self._fail_if_orphaned(v, job)
            if waited > timeout:
                raise TemplateError(
                    f"the import job of template version {v.get('name')} ({vid}) is still {status} after "
                    f"{timeout}s: is a provisioner daemon running (Coder's built-in provisioners, "
                    "CODER_PROVISIONER_DAEMONS > 0)? Raise import_timeout for slow imports",
                    version_id=vid,
                )
            return AGAIN

        return poll(
            lambda: self.client.get_template_version(vid),
            check,
            self._sleep,
            self._clock,
            delay=first_delay,
            max_delay=max_delay,
            first=version,
        )

    def _fail_if_orphaned(self, version, job):
        """Cancel and raise when the provisioner running the job stopped reporting to Coder: Coder keeps such a job
        running (its daemon even counts as busy) until its hung-job timeout."""
        worker = job.get("worker_id")
        if not worker:
            return
        mine = self.client.provisioner_daemon(self.org, worker)
        if mine is not None and not daemon_gone(mine, self.client.last_date):
            return
        name = (mine or {}).get("name") or worker
        try:
            self.client.cancel_template_version(version["id"])
        except CoderError as e:
            self.note(f"canceling the orphaned import job of version {version.get('name')}: {e}")
        raise TemplateError(
            f"the import job of template version {version.get('name')} ({version['id']}) ran on provisioner "
            f"{name}, which stopped reporting to Coder (did Coder restart?): the job was canceled; run again to "
            "import the version anew",
            version_id=version["id"],
        )

    def _has_version(self, template_id, chash):
        """Whether a succeeded version of the template carries this content hash (one extra GET)."""
        for v in self.client.template_versions(template_id):
            if hash_from_message(v.get("message")) == chash and (v.get("job") or {}).get("status") == "succeeded":
                return True
        return False

    def _active_manifest(self, active):
        file_id = ((active or {}).get("job") or {}).get("file_id")
        if not file_id:
            return {}
        try:
            return tar_manifest(self.client.download_file(file_id))
        except (CoderError, tarfile.TarError):
            return {}

    def _active_variables(self, active):
        if not active:
            return {}
        try:
            return {
                v["name"]: (v.get("value", ""), v.get("default_value", ""))
                for v in self.client.template_version_variables(active["id"])
            }
        except CoderError:
            return {}

    def _import_failure(self, name, version, template, result):
        job = version.get("job") or {}
        try:
            lines = log_tail(self.client.template_version_logs(version["id"]))
        except CoderError as e:
            lines = [f"(could not read the job's logs: {e})"]
        what = "left the active version untouched" if template else "created no template"
        hint = ""
        if job.get("error_code") == "REQUIRED_TEMPLATE_VARIABLES":
            try:
                missing = [
                    v["name"]
                    for v in self.client.template_version_variables(version["id"])
                    if v.get("required") and not v.get("value")
                ]
            except CoderError:
                missing = []
            hint = " Set the template variables {} in the template's `variables`.".format(", ".join(missing) or "")
        said = terraform_errors(lines)
        msg = (
            f"importing template {name} failed (version {version.get('name')}, job {job.get('status')}): "
            f"{job.get('error') or 'no error message'}."
            + (" Terraform said: " + " | ".join(said) + "." if said else "")
            + f"{hint} Nothing was promoted: {what}. Provisioner log (error lines, then the end):\n"
            + "\n".join(lines)
        )
        result["logs"] = lines
        return TemplateError(msg, **result)


def _template_view(t):
    if not t:
        return {}
    keys = ("id", "name", "display_name", "description", "icon", "active_version_id", "default_ttl_ms")
    return {k: t.get(k) for k in keys}


def _version_view(v):
    if not v:
        return {}
    job = v.get("job") or {}
    return {
        "id": v.get("id"),
        "name": v.get("name"),
        "message": v.get("message"),
        "job_status": job.get("status"),
        "job_error": job.get("error") or "",
        "file_id": job.get("file_id"),
    }


def _diff_doc(files, variables, settings, exists):
    if not exists:
        return {}
    return {"files": dict(sorted(files.items())), "variables": dict(sorted(variables.items())), "settings": settings}
