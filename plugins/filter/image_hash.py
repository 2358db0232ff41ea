# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Deterministic content hash of a container build context plus its build arguments.

`"{{ context_dir | image_content_hash(build_args, exclude) }}"` walks the directory in sorted order
and hashes every file's relative path, executable bit and content (symlinks by their target), then
the build arguments as canonical JSON. The result does not depend on mtimes, ownership, the order of
the directory listing or of the dict keys, so the same sources and arguments give the same tag on
every machine.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import stat

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: image_content_hash
short_description: sha256 of a build context directory and build arguments
description:
  - Hashes every file under I(_input) (relative path, executable bit, content; symlinks by target),
    skipping paths that match I(exclude), then the build arguments as canonical JSON.
options:
  _input:
    description: The build context directory.
    type: path
    required: true
  build_args:
    description: Build arguments (and anything else that changes the image, such as labels).
    type: dict
    default: {}
  exclude:
    description: fnmatch patterns matched against each relative path and each path component.
    type: list
    elements: str
    default: [".git", "__pycache__", "*.pyc"]
"""

EXAMPLES = r"""
- name: Tag of the workspace image
  ansible.builtin.set_fact:
    tag: >-
      0.1.0-{{ image_dir | coderstack.platform.image_content_hash({'BASE_IMAGE': 'debian:bookworm'}) }}
  vars:
    image_dir: "{{ playbook_dir ~ '/../image' }}"
"""

RETURN = r"""
_value:
  description: The hex sha256 digest (64 characters).
  type: str
"""

DEFAULT_EXCLUDE = (".git", "__pycache__", "*.pyc")
_VERSION = b"coderstack-image-content-hash-v1\0"


def _excluded(rel: str, patterns) -> bool:
    parts = rel.split("/")
    return any(fnmatch.fnmatchcase(rel, pat) or any(fnmatch.fnmatchcase(p, pat) for p in parts) for pat in patterns)


def _entries(root: str, patterns):
    """(relative posix path, absolute path) of every non-directory entry, sorted by relative path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        dirnames[:] = [d for d in dirnames if not _excluded(rel_dir + d, patterns)]
        # symlinks to directories are listed in dirnames but not followed: hash them as links
        for name in list(dirnames) + filenames:
            path = os.path.join(dirpath, name)
            if name in dirnames and not os.path.islink(path):
                continue
            rel = rel_dir + name
            if not _excluded(rel, patterns):
                found.append((rel, path))
    return sorted(found)


def image_content_hash(context_dir, build_args=None, exclude=None) -> str:
    if not isinstance(context_dir, str) or not context_dir:
        raise AnsibleFilterError(f"image_content_hash: expected a directory path, got {context_dir!r}")
    if not os.path.isdir(context_dir):
        raise AnsibleFilterError(f"image_content_hash: build context {context_dir} is not a directory")
    if build_args is None:
        build_args = {}
    if not isinstance(build_args, dict):
        raise AnsibleFilterError(f"image_content_hash: build_args must be a dict, got {type(build_args).__name__}")
    patterns = list(DEFAULT_EXCLUDE if exclude is None else exclude)

    digest = hashlib.sha256(_VERSION)
    for rel, path in _entries(context_dir, patterns):
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            digest.update(f"link\0{rel}\0{os.readlink(path)}\0".encode())
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        mode = "x" if st.st_mode & 0o111 else "-"
        with open(path, "rb") as fh:
            content = hashlib.sha256()
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                content.update(chunk)
        digest.update(f"file\0{rel}\0{mode}\0".encode())
        digest.update(content.digest())
    args = {str(k): "" if v is None else str(v) for k, v in build_args.items()}
    digest.update(b"args\0" + json.dumps(args, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


class FilterModule:
    def filters(self):
        return {"image_content_hash": image_content_hash}
