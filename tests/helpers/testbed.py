"""Where the running testbed is and how to talk to it."""

from __future__ import annotations

import os
import time
from pathlib import Path


class Testbed:
    def __init__(self, repo: Path):
        self.repo = repo
        self.state = Path(os.environ.get("CODERSTACK_TESTBED_DIR", repo / ".testbed"))
        self.kubeconfig = self.state / "kubeconfig"
        self.bin = self.state / "bin"

    def api_client(self):
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def api_ready(self) -> bool:
        if not self.kubeconfig.exists():
            return False
        try:
            from kubernetes import client

            client.VersionApi(self.api_client()).get_code(_request_timeout=5)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False

    def pinned(self, name: str) -> str:
        """A version testbed/versions.env pins (KUBERNETES_VERSION, CONTAINERD_VERSION, ...), as written there."""
        for line in (self.repo / "testbed/versions.env").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == name:
                return value.split("#")[0].strip()
        raise KeyError(f"{name} is not in testbed/versions.env")

    def read(self, name: str) -> str:
        """A value the testbed wrote into its state dir (e.g. postgres-url, registry-url)."""
        return (self.state / name).read_text().strip()

    def firewall(self, on: bool) -> None:
        """NetworkPolicy enforcement on the real node (kube-router's firewall controller) on or off."""
        import subprocess

        action = "firewall-start" if on else "firewall-stop"
        subprocess.run(["bash", str(self.repo / "testbed/svc_40_node.sh"), action], check=True, capture_output=True)

    @property
    def node_ip(self) -> str:
        """The real node's IP, where the registry and the external PostgreSQL also listen (pods reach it)."""
        return self.read("registry-url").split(":")[0]

    # The platform site.yml installs with inventories/testbed: Coder in the cluster, behind the ingress, its
    # certificate signed by the CA the ingress role exports into the state dir.
    coder_url = "https://coder.testbed.local"

    @property
    def coder_ca(self) -> Path:
        return self.state / "coder-ca.crt"

    def coder(self, kube, path: str, method: str = "GET", **kwargs):
        """Call the platform's Coder API as the admin (token from Secret coder/coder-admin-token)."""
        import base64

        import requests
        from kubernetes import client

        token = client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", "coder").data["token"]
        hdr = {"Coder-Session-Token": base64.b64decode(token).decode()}
        # right after a rollout the ingress may still send a request to the pod that is going away (502/503 for a
        # moment): reads wait that out for up to a minute, as coderstack's modules do; writes are never repeated
        deadline = time.monotonic() + (60 if method == "GET" else 0)
        while True:
            try:
                resp = requests.request(
                    method, self.coder_url + path, headers=hdr, timeout=30, verify=str(self.coder_ca), **kwargs
                )
                if resp.status_code not in (502, 503, 504) or time.monotonic() > deadline:
                    break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(2)
        resp.raise_for_status()
        return resp.json() if resp.content else None
