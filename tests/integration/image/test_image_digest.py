"""Images by their registry's digest (roles/coderstack/tasks/image_digest.yml): what the platform runs, and the token
authentication of registries such as Docker Hub, ghcr.io or Harbor.

Docker Hub cannot be reached here, so a stand-in speaks the registry token authentication contract in front of the
testbed's real registry: a manifest request without a token is answered 401 with a `Bearer realm=...,service=...`
challenge; the realm grants a token for `repository:<name>:pull` to the registry's user (basic auth) and to nobody
else; with the token the request goes through to the real registry, whose answer (and digest) comes back as it is."""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from helpers.pki import certificate, key_pem, pem

NS = "coder"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

PLAY = """
- name: An image is pinned to its digest
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The image's reference is asked
      ansible.builtin.include_role:
        name: coderstack.platform.coderstack
        tasks_from: image_digest
      vars:
        coderstack_image_name: "{{ image }}"
        coderstack_image_running: ""
    - name: The reference is shown
      ansible.builtin.debug:
        msg: "PINNED={{ coderstack_image_pinned }}"
"""


def test_platform_runs_coder_and_postgresql_by_digest(converged, kube):
    from kubernetes import client

    apps = client.AppsV1Api(kube)
    coder = apps.read_namespaced_deployment("coder", NS).spec.template.spec.containers[0].image
    postgres = apps.read_namespaced_stateful_set("coder-db", NS).spec.template.spec.containers[0].image
    assert DIGEST.search(coder) and ":v" in coder.split("@")[0], coder
    assert DIGEST.search(postgres) and postgres.split("@")[0].endswith("/coderstack-testbed/postgres:15"), postgres
    # the pods run the content of those digests (the runtime reports it as the image's ID)
    pods = client.CoreV1Api(kube).list_namespaced_pod(NS).items
    running = {s.image_id.split("@")[-1] for p in pods for s in (p.status.container_statuses or []) if s.image_id}
    assert {coder.split("@")[1], postgres.split("@")[1]} <= running, running


def _tls(tmp_path) -> tuple[str, str, str]:
    """A CA and a certificate for 127.0.0.1 it signed: (ca file, cert file, key file)."""
    ca, ca_key = certificate("stand-in registry CA", ca=True)
    cert, key = certificate("127.0.0.1", ca, ca_key, ips=("127.0.0.1",))
    files = []
    for name, data in (("ca.crt", pem(ca)), ("tls.crt", pem(cert)), ("tls.key", key_pem(key))):
        (tmp_path / name).write_bytes(data)
        files.append(str(tmp_path / name))
    return files[0], files[1], files[2]


@pytest.fixture()
def token_registry(testbed, tmp_path):
    """The stand-in in front of the testbed's registry on https://127.0.0.1:<port>; yields (host, user, password,
    ca file, the real registry's digest of coderstack-testbed/postgres:15, the scopes tokens were asked for)."""
    upstream = testbed.read("registry-url")
    auth = (testbed.read("registry/username"), testbed.read("registry/password"))
    upstream_ca = testbed.read("registry-ca")
    tokens: dict[str, str] = {}
    scopes: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _challenge(self):
            host = f"127.0.0.1:{self.server.server_port}"
            self.send_response(401)
            self.send_header(
                "WWW-Authenticate", f'Bearer realm="https://{host}/token",service="stand-in",scope="repository:x:pull"'
            )
            self.end_headers()

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                return self._challenge()
            given = self.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            query = urllib.parse.parse_qs(url.query)
            if given != expected or query.get("service") != ["stand-in"]:
                self.send_response(401)
                self.end_headers()
                return None
            scope = query.get("scope", [""])[0]
            scopes.append(scope)
            token = secrets.token_hex(16)
            tokens[token] = scope
            body = json.dumps({"token": token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None

        def do_HEAD(self):
            given = self.headers.get("Authorization", "")
            repo = self.path.split("/manifests/")[0].removeprefix("/v2/")
            if not given.startswith("Bearer ") or tokens.get(given[7:]) != f"repository:{repo}:pull":
                return self._challenge()
            answer = requests.head(
                f"https://{upstream}{self.path}",
                headers={"Accept": self.headers.get("Accept", "")},
                auth=auth,
                verify=upstream_ca,
                timeout=30,
            )
            self.send_response(answer.status_code)
            for name in ("Docker-Content-Digest", "Content-Type"):
                if name in answer.headers:
                    self.send_header(name, answer.headers[name])
            self.end_headers()
            return None

    ca, cert, key = _tls(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real = requests.head(
        f"https://{upstream}/v2/coderstack-testbed/postgres/manifests/15",
        headers={
            "Accept": "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json,"
            " application/vnd.docker.distribution.manifest.v2+json,"
            " application/vnd.docker.distribution.manifest.list.v2+json"
        },
        auth=auth,
        verify=upstream_ca,
        timeout=30,
    ).headers["Docker-Content-Digest"]
    yield f"127.0.0.1:{server.server_port}", auth[0], auth[1], ca, real, scopes
    server.shutdown()


def _pin(playbook, tmp_path, extra: dict):
    play = tmp_path / "pin.yml"
    play.write_text(PLAY)
    return playbook(play, extra_vars=extra)


def test_token_authenticated_registry_gives_the_digest(token_registry, playbook, tmp_path):
    host, user, password, ca, real, scopes = token_registry
    image = f"{host}/coderstack-testbed/postgres:15"
    base = {
        "image": image,
        "coderstack_registry": host,
        "coderstack_registry_username": user,
        "coderstack_registry_ca_file": ca,
    }
    ok = _pin(playbook, tmp_path, {**base, "coderstack_registry_password": password})
    assert ok.rc == 0, ok.output[-3000:]
    assert f"PINNED={image}@{real}" in ok.output
    assert scopes == ["repository:coderstack-testbed/postgres:pull"]
    assert password not in ok.output
    # the token service refuses another password: the run stops naming what to check, and shows no password
    bad = _pin(playbook, tmp_path, {**base, "coderstack_registry_password": "not-the-password"})
    assert bad.rc != 0
    text = " ".join(bad.output.split())
    assert f"did not give the digest of {image} (HTTP 401" in text, bad.output[-3000:]
    assert "coderstack_registry_username/_password" in text and "not-the-password" not in bad.output
