"""The testbed is a real Kubernetes control plane: these tests prove it with what a user would check."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def wait_until(what: str, predicate, timeout: float = 60.0, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@pytest.fixture()
def namespace(kube):
    core = client.CoreV1Api(kube)
    name = f"tb-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def test_server_reports_its_real_version(testbed, kube):
    info = client.VersionApi(kube).get_code()
    assert info.major == "1"
    assert info.git_version == testbed.pinned("KUBERNETES_VERSION"), info.git_version


def test_one_real_node_and_tainted_simulated_nodes_are_ready(testbed, kube):
    nodes = client.CoreV1Api(kube).list_node().items
    real = [n for n in nodes if (n.metadata.labels or {}).get("coderstack.io/testbed-node") == "real"]
    fake = [n for n in nodes if (n.metadata.labels or {}).get("type") == "kwok"]
    assert len(real) == 1 and len(fake) >= 1, [n.metadata.name for n in nodes]
    for node in nodes:
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        assert ready == "True", node.metadata.name
    # the real node: a kubelet and a container runtime that report themselves; schedulable by anything
    info = real[0].status.node_info
    assert info.kubelet_version == testbed.pinned("KUBERNETES_VERSION"), info.kubelet_version
    # containerd built from its module (testbed/build_runtime.sh), not Debian's 1.6: its default runtime handler says
    # it can run user-namespaced pods (hostUsers: false), what the kubelet and coderstack's preflight read
    want = "containerd://" + testbed.pinned("CONTAINERD_VERSION").lstrip("v")
    assert info.container_runtime_version == want, info.container_runtime_version
    handlers = {h.name: h.features for h in real[0].status.runtime_handlers or []}
    assert handlers.get("") and handlers[""].user_namespaces is True, handlers
    assert not real[0].spec.taints
    # the simulated nodes only take pods that tolerate them
    for node in fake:
        assert {(t.key, t.effect) for t in node.spec.taints or []} == {("kwok.x-k8s.io/node", "NoSchedule")}


def test_deployment_through_kubernetes_core_becomes_available(testbed, kube, playbook):
    ns = f"tb-dep-{uuid.uuid4().hex[:6]}"
    result = playbook("tests/fixtures/playbooks/testbed_deployment.yml", extra_vars={"test_namespace": ns})
    assert result.rc == 0, result.output[-3000:]
    apps = client.AppsV1Api(kube)
    try:
        dep = apps.read_namespaced_deployment("web", ns)
        assert dep.status.available_replicas == 2
        core = client.CoreV1Api(kube)
        pods = core.list_namespaced_pod(ns, label_selector="app=web").items
        # really running: on the real node, with a container ID from containerd and a pod IP on the testbed bridge
        assert {p.spec.node_name for p in pods} == {"testbed-real-1"}
        for p in pods:
            assert p.status.phase == "Running"
            assert p.status.container_statuses[0].container_id.startswith("containerd://")
            assert p.status.pod_ip.startswith("10.85.0."), p.status.pod_ip
        sim = core.list_namespaced_pod(ns, label_selector="app=sim").items
        assert len(sim) == 3 and {p.spec.node_name.startswith("testbed-node-") for p in sim} == {True}
        pvc = wait_until(
            f"PVC {ns}/data to be Bound",
            lambda: (
                (c := client.CoreV1Api(kube).read_namespaced_persistent_volume_claim("data", ns))
                and c.status.phase == "Bound"
                and c
            ),
        )
        pv = client.CoreV1Api(kube).read_persistent_volume(pvc.spec.volume_name)
        assert pv.spec.capacity["storage"] == "2Gi"
        assert pv.spec.storage_class_name == "standard"
        # A second run changes nothing.
        again = playbook("tests/fixtures/playbooks/testbed_deployment.yml", extra_vars={"test_namespace": ns})
        assert again.rc == 0 and again.changed == 0, again.output[-3000:]
    finally:
        client.CoreV1Api(kube).delete_namespace(ns)


def test_released_volume_is_reclaimed(kube, namespace):
    core = client.CoreV1Api(kube)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name="scratch"),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        ),
    )
    pvc = wait_until(
        "PVC scratch to be Bound",
        lambda: (c := core.read_namespaced_persistent_volume_claim("scratch", namespace)).status.phase == "Bound" and c,
    )
    core.delete_namespaced_persistent_volume_claim("scratch", namespace)

    def gone():
        try:
            core.read_persistent_volume(pvc.spec.volume_name)
            return False
        except ApiException as exc:
            return exc.status == 404

    wait_until(f"PV {pvc.spec.volume_name} to be deleted after its claim", gone)


def test_helm_install_upgrade_uninstall_round_trip(testbed, kube, namespace, repo):
    helm = [str(testbed.bin / "helm"), "--kubeconfig", str(testbed.kubeconfig), "-n", namespace]
    chart = str(repo / "tests/fixtures/charts/hello")

    def run(*args):
        proc = subprocess.run(helm + list(args), capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    core = client.CoreV1Api(kube)
    run("install", "hello", chart, "--wait", "--timeout", "60s")
    assert core.read_namespaced_config_map("hello-message", namespace).data == {"message": "hello"}
    run("upgrade", "hello", chart, "--set", "message=upgraded", "--wait", "--timeout", "60s")
    assert core.read_namespaced_config_map("hello-message", namespace).data == {"message": "upgraded"}
    assert json.loads(run("status", "hello", "-o", "json"))["version"] == 2
    run("uninstall", "hello", "--wait")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("hello-message", namespace)
    assert err.value.status == 404


def test_rbac_denies_a_restricted_service_account(testbed, kube, namespace):
    core = client.CoreV1Api(kube)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="limited"))
    )
    token = core.create_namespaced_service_account_token(
        "limited", namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    ).status.token
    cfg = client.Configuration()
    cfg.host = kube.configuration.host
    cfg.ssl_ca_cert = kube.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": f"Bearer {token}"}
    limited = client.CoreV1Api(client.ApiClient(cfg))
    with pytest.raises(ApiException) as err:
        limited.list_namespaced_secret(namespace)
    assert err.value.status == 403
    assert 'cannot list resource \\"secrets\\"' in err.value.body or "forbidden" in err.value.body.lower()
    # The same account may read what the default discovery role grants.
    assert client.VersionApi(client.ApiClient(cfg)).get_code().major == "1"


def _node_daemon_pids() -> dict[str, set[str]]:
    """PIDs of the real node's daemons themselves (not their restart loops)."""
    out = {}
    for name in ("kube-proxy", "kube-router", "kubelet"):
        proc = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)
        out[name] = set(proc.stdout.split())
    return out


def test_a_second_node_start_leaves_the_node_daemons_running(testbed):
    """`up.sh` on a running testbed (molecule create, a developer) starts nothing twice and ends nothing: kube-proxy
    exits when its config file is written, which once left every ClusterIP pointing at stale pod addresses."""
    before = _node_daemon_pids()
    assert all(before.values()), before
    proc = subprocess.run(
        ["bash", "testbed/svc_40_node.sh", "start"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    time.sleep(3)  # kube-proxy noticed a config write within a second
    assert _node_daemon_pids() == before
