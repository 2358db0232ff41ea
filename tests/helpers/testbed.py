"""Where the running testbed is and how to talk to it."""

from __future__ import annotations

import os
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

    def read(self, name: str) -> str:
        """A value the testbed wrote into its state dir (e.g. postgres-url, coder-url)."""
        return (self.state / name).read_text().strip()
