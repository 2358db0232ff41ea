"""Dynamic hostPath provisioner for the testbed's default StorageClass.

The real external-provisioner contract, minimal: for every PVC whose StorageClass names our provisioner
(kube-controller-manager marks it with `volume.kubernetes.io/storage-provisioner`), create a hostPath
PersistentVolume pre-bound to the claim (the PV controller then binds both); when a PV we made is
Released and its reclaim policy is Delete, delete its directory and the PV. Watches, no polling.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import threading
import time
from pathlib import Path

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

ANNOTATION_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANNOTATION_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
log = logging.getLogger("provisioner")


class Provisioner:
    def __init__(self, api: client.CoreV1Api, storage: client.StorageV1Api, name: str, root: Path):
        self.api, self.storage, self.name, self.root = api, storage, name, root

    def ours(self, pvc) -> bool:
        ann = pvc.metadata.annotations or {}
        if (
            ann.get(ANNOTATION_PROVISIONER) == self.name
            or ann.get("volume.beta.kubernetes.io/storage-provisioner") == self.name
        ):
            return True
        sc_name = pvc.spec.storage_class_name
        if not sc_name:
            return False
        try:
            return self.storage.read_storage_class(sc_name).provisioner == self.name
        except ApiException:
            return False

    def provision(self, pvc) -> None:
        if pvc.spec.volume_name or pvc.status.phase != "Pending" or not self.ours(pvc):
            return
        ns, claim = pvc.metadata.namespace, pvc.metadata.name
        pv_name = f"pvc-{pvc.metadata.uid}"
        path = self.root / pv_name
        path.mkdir(parents=True, exist_ok=True)
        # world-writable, as rancher's local-path-provisioner makes its directories: fsGroup does not apply to
        # hostPath volumes, and pods running as a non-root uid must be able to write their claim
        path.chmod(0o777)
        sc = self.storage.read_storage_class(pvc.spec.storage_class_name)
        pv = client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=pv_name, annotations={ANNOTATION_PROVISIONED_BY: self.name}),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": pvc.spec.resources.requests["storage"]},
                access_modes=pvc.spec.access_modes,
                persistent_volume_reclaim_policy=sc.reclaim_policy or "Delete",
                storage_class_name=pvc.spec.storage_class_name,
                volume_mode=pvc.spec.volume_mode,
                host_path=client.V1HostPathVolumeSource(path=str(path), type="DirectoryOrCreate"),
                claim_ref=client.V1ObjectReference(
                    kind="PersistentVolumeClaim", namespace=ns, name=claim, uid=pvc.metadata.uid, api_version="v1"
                ),
            ),
        )
        try:
            self.api.create_persistent_volume(pv)
            log.info("provisioned %s for %s/%s (%s)", pv_name, ns, claim, pvc.spec.resources.requests["storage"])
        except ApiException as exc:
            if exc.status != 409:
                raise

    def reclaim(self, pv) -> None:
        ann = pv.metadata.annotations or {}
        if ann.get(ANNOTATION_PROVISIONED_BY) != self.name or pv.status.phase != "Released":
            return
        if pv.spec.persistent_volume_reclaim_policy != "Delete":
            return
        shutil.rmtree(pv.spec.host_path.path, ignore_errors=True)
        try:
            self.api.delete_persistent_volume(pv.metadata.name)
            log.info("deleted %s (claim released)", pv.metadata.name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def loop(self, lister, handler) -> None:
        while True:
            try:
                items = lister()
                for obj in items.items:
                    handler(obj)
                for event in watch.Watch().stream(
                    lister, resource_version=items.metadata.resource_version, timeout_seconds=60
                ):
                    if event["type"] in ("ADDED", "MODIFIED"):
                        handler(event["object"])
            except Exception as exc:  # noqa: BLE001 - keep serving; the API server may be restarting
                log.warning("watch interrupted: %s; retrying in 1s", exc)
                time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--provisioner", default="coderstack.io/testbed-hostpath")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    prov = Provisioner(client.CoreV1Api(api_client), client.StorageV1Api(api_client), args.provisioner, args.root)
    log.info("serving %s, volumes under %s", args.provisioner, args.root)
    threading.Thread(
        target=prov.loop, args=(prov.api.list_persistent_volume, prov.reclaim), daemon=True, name="pv"
    ).start()
    prov.loop(prov.api.list_persistent_volume_claim_for_all_namespaces, prov.provision)


if __name__ == "__main__":
    main()
