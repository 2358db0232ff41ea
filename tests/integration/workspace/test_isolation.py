"""Workspace isolation (roles/namespaces, the coder and postgres roles), on the testbed's real node with a NetworkPolicy
enforcer (kube-router's firewall controller, testbed/svc_40_node.sh):

- workspaces live in their own namespace; Coder's service account may manage pods there and nothing in the platform
  namespace, so a template cannot mount the platform's Secrets;
- Pod Security: the platform namespace enforces `restricted` (a privileged pod is refused); the workspace namespace
  runs dockerd in user namespaces (coderstack_docker_mode userns): Pod Security `privileged` there, and coderstack's
  admission policy refuses what would reach the node (privileged, host namespaces, host paths, capabilities beyond
  dockerd's) and admits dockerd's extra rights only with `hostUsers: false`;
- a pod in the workspace namespace reaches Coder and the cluster DNS, but not PostgreSQL and not another workspace;
  PostgreSQL refuses pods of other namespaces too;
- the workspace image is limited to the inventory's registry: Coder refuses a workspace with another image.

Every "cannot" has a positive control beside it (the same path with the allowed destination or source), so a broken
enforcer or a missing listener fails the test instead of passing it.
"""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from helpers.modules import run_module
from helpers.pods import connects, exec_in, pod_manifest, run_pod, workspace_image

pytestmark = pytest.mark.slow
PLATFORM = "coder"
WORKSPACES = "coder-workspaces"
CODER_SA = f"system:serviceaccount:{PLATFORM}:coder"
LISTEN_PORT = 18080
# node is in the workspace image (code-server's runtime): a minimal HTTP listener without extra packages
LISTENER = f"node -e \"require('http').createServer((q, r) => r.end('ok')).listen({LISTEN_PORT})\""


@pytest.fixture(scope="module")
def pods(converged, kube):
    """A listener and a client in the workspace namespace, and a client in a scratch namespace without policies."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    image = workspace_image(kube)
    scratch = f"isolation-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": scratch}})
    made = []
    try:
        listener = run_pod(kube, WORKSPACES, image, LISTENER)
        made.append(listener)
        ws_client = run_pod(kube, WORKSPACES, image, "sleep 600")
        made.append(ws_client)
        other = run_pod(kube, scratch, image, "sleep 600")
        made.append(other)
        time.sleep(2)  # the listener binds; the enforcer has seen the new pods
        yield {"listener": listener, "ws": ws_client, "other": other}
    finally:
        for p in made:
            core.delete_namespaced_pod(p.metadata.name, p.metadata.namespace, grace_period_seconds=0)
        core.delete_namespace(scratch)


def test_namespaces_carry_their_pod_security_levels(converged, kube):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    labels = {ns: core.read_namespace(ns).metadata.labels for ns in (PLATFORM, WORKSPACES)}
    assert labels[PLATFORM]["pod-security.kubernetes.io/enforce"] == "restricted"
    # the testbed inventory runs dockerd in user namespaces (coderstack_docker_mode userns): baseline forbids the
    # capabilities dockerd needs even there, so the admission policy below is what guards the namespace
    assert labels[WORKSPACES]["pod-security.kubernetes.io/enforce"] == "privileged"


def _dockerd_pod(ns: str, image: str, **spec) -> dict:
    """A pod as templates/kubernetes-dind makes it in userns mode (what dockerd needs, in a user namespace)."""
    m = pod_manifest(f"admission-{uuid.uuid4().hex[:6]}", ns, image, "true", hostUsers=False, **spec)
    m["spec"]["containers"][0]["securityContext"] = {
        "privileged": False,
        "procMount": "Unmasked",
        "capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]},
        "seccompProfile": {"type": "Unconfined"},
    }
    return m


def _refused(core, ns: str, manifest: dict) -> str:
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(ns, manifest, dry_run="All")
    assert refused.value.status in (400, 403, 422), refused.value.body
    return refused.value.body


def test_platform_namespace_refuses_a_privileged_pod(converged, kube):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    image = workspace_image(kube)
    body = _refused(core, PLATFORM, _dockerd_pod(PLATFORM, image))
    assert "violates PodSecurity" in body, body
    privileged = pod_manifest("psa-probe", PLATFORM, image, "true")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    assert "violates PodSecurity" in _refused(core, PLATFORM, privileged)
    # control: the dockerd pod is admitted where workspaces run
    core.create_namespaced_pod(WORKSPACES, _dockerd_pod(WORKSPACES, image), dry_run="All")


def test_workspace_namespace_admits_dockerd_only_in_a_user_namespace(converged, kube):
    """coderstack_docker_mode userns: dockerd's rights only with hostUsers false, nothing that reaches the node."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    image = workspace_image(kube)
    # positive controls: the userns dockerd pod and a plain baseline pod are admitted
    core.create_namespaced_pod(WORKSPACES, _dockerd_pod(WORKSPACES, image), dry_run="All")
    core.create_namespaced_pod(WORKSPACES, pod_manifest("plain", WORKSPACES, image, "true"), dry_run="All")

    on_host_users = _dockerd_pod(WORKSPACES, image)
    on_host_users["spec"]["hostUsers"] = True
    del on_host_users["spec"]["containers"][0]["securityContext"]["procMount"]  # the API itself refuses that one
    assert "must run in a user namespace" in _refused(core, WORKSPACES, on_host_users)
    privileged = _dockerd_pod(WORKSPACES, image)
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    assert "privileged containers are refused" in _refused(core, WORKSPACES, privileged)
    ptrace = _dockerd_pod(WORKSPACES, image)
    ptrace["spec"]["containers"][0]["securityContext"]["capabilities"]["add"].append("SYS_PTRACE")
    assert "may add only" in _refused(core, WORKSPACES, ptrace)
    # plain pods (the API itself refuses host namespaces in a user namespace): Pod Security privileged would admit them
    host_net = pod_manifest("host-net", WORKSPACES, image, "true", hostNetwork=True)
    assert "network, PID or IPC" in _refused(core, WORKSPACES, host_net)
    host_path = pod_manifest("host-path", WORKSPACES, image, "true", volumes=[{"name": "h", "hostPath": {"path": "/"}}])
    host_path["spec"]["containers"][0]["volumeMounts"] = [{"name": "h", "mountPath": "/host"}]
    assert "host paths" in _refused(core, WORKSPACES, host_path)


@pytest.mark.parametrize(
    "namespace,verb,resource,allowed",
    [
        (WORKSPACES, "create", "pods", True),
        (WORKSPACES, "create", "persistentvolumeclaims", True),
        (PLATFORM, "create", "pods", False),
        (PLATFORM, "get", "secrets", False),
        (PLATFORM, "list", "secrets", False),
    ],
)
def test_coder_service_account_manages_workspaces_only(converged, kube, namespace, verb, resource, allowed):
    """What Coder's provisioner (and so any template) can do with the service account's token."""
    from kubernetes import client

    review = client.AuthorizationV1Api(kube).create_subject_access_review(
        {
            "spec": {
                "user": CODER_SA,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{PLATFORM}"],
                "resourceAttributes": {"namespace": namespace, "verb": verb, "resource": resource},
            }
        }
    )
    assert review.status.allowed is allowed, (namespace, verb, resource, review.status)


def test_platform_secrets_are_not_in_the_workspace_namespace(converged, kube):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    platform = {s.metadata.name for s in core.list_namespaced_secret(PLATFORM).items}
    assert {"coder-db-url", "coder-admin", "coder-admin-token"} <= platform
    assert not platform & {s.metadata.name for s in core.list_namespaced_secret(WORKSPACES).items}


def test_workspace_reaches_coder_but_not_postgresql(kube, pods):
    ws = pods["ws"]
    assert connects(kube, ws, f"coder.{PLATFORM}.svc.cluster.local", 80)
    assert not connects(kube, ws, f"coder-db.{PLATFORM}.svc.cluster.local", 5432)


def test_postgresql_refuses_other_namespaces(kube, pods):
    from kubernetes import client

    other = pods["other"]
    db_ip = client.CoreV1Api(kube).read_namespaced_pod("coder-db-0", PLATFORM).status.pod_ip
    # control: the same pod reaches Coder (no policy of its own limits it)
    assert connects(kube, other, f"coder.{PLATFORM}.svc.cluster.local", 80)
    assert not connects(kube, other, db_ip, 5432)


def test_workspaces_cannot_reach_each_other(kube, pods):
    import socket

    listener = pods["listener"]
    # controls: the listener answers on its pod address, inside its pod and from the node (the enforcer lets the
    # node in, as kubelet probes need): only other pods are kept out
    assert connects(kube, listener, listener.status.pod_ip, LISTEN_PORT)
    socket.create_connection((listener.status.pod_ip, LISTEN_PORT), timeout=4).close()
    assert not connects(kube, pods["ws"], listener.status.pod_ip, LISTEN_PORT)
    assert not connects(kube, pods["other"], listener.status.pod_ip, LISTEN_PORT)


def test_workspace_image_outside_the_registry_is_refused(converged, testbed, kube):
    from kubernetes import client

    token = client.CoreV1Api(kube).read_namespaced_secret("coder-admin-token", PLATFORM).data["token"]
    args = {
        "coder_url": testbed.coder_url,
        "coder_token": base64.b64decode(token).decode(),
        "ca_path": str(testbed.coder_ca),
        "owner": "carol",
        "name": f"img{uuid.uuid4().hex[:6]}",
        "template": "kubernetes-dind",
        "parameters": {"cpu": 2, "memory": 2, "image": "docker.io/library/ubuntu:24.04"},
    }
    res = run_module("coderstack.platform.coder_workspace", args)
    try:
        assert res.get("failed") is True
        assert "this deployment allows only images from its own registry" in res["msg"], res["msg"]
    finally:
        run_module("coderstack.platform.coder_workspace", dict(args, state="absent"))


# --- Every door locked by default (issue 24): each "cannot" beside its positive control ---------------------------

CARE_POD = "coder-carol-dev"
CODE_SERVER_PORT = 9069
HOST_PORT = 18081
# addresses the test puts on the testbed's bridge for the time of the test, with a listener on each: one stands for
# the internet (TEST-NET-2, outside every denied range), one for the cloud metadata service
INTERNET_STANDIN = "198.51.100.7"
METADATA = "169.254.169.254"


def carol_pod(kube):
    from kubernetes import client

    return client.CoreV1Api(kube).read_namespaced_pod(CARE_POD, WORKSPACES)


@pytest.fixture(scope="module")
def host_listeners():
    """TCP listeners on the host at a stand-in internet address and at the metadata address (on bridge cstb0, where
    the pods' default route goes), removed again after the module."""
    import socket
    import subprocess
    import threading

    added, servers = [], []
    try:
        for address in (INTERNET_STANDIN, METADATA):
            subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "cstb0"], check=True, capture_output=True)
            added.append(address)
            srv = socket.create_server((address, HOST_PORT))
            servers.append(srv)

            def serve(s=srv):
                while True:
                    try:
                        conn, _ = s.accept()
                    except OSError:
                        return
                    conn.close()

            threading.Thread(target=serve, daemon=True).start()
        yield
    finally:
        for srv in servers:
            srv.close()
        for address in added:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "cstb0"], check=False, capture_output=True)


def test_code_server_is_closed_from_the_node_and_other_pods(kube, pods):
    import socket

    pod = carol_pod(kube)
    # control: inside the workspace (where Coder's agent connects from) code-server answers on loopback
    out = exec_in(kube, pod, f"curl -fsS --max-time 4 http://127.0.0.1:{CODE_SERVER_PORT}/healthz && echo ANSWERED")
    assert "ANSWERED" in out, out
    # the door: the pod's own address, from the node (policies never filter the node) and from a pod of a namespace
    # without policies
    with pytest.raises(OSError):
        socket.create_connection((pod.status.pod_ip, CODE_SERVER_PORT), timeout=4).close()
    assert not connects(kube, pods["other"], pod.status.pod_ip, CODE_SERVER_PORT)
    # control for the probe: the same node-to-pod path reaches a listener on the pod address
    socket.create_connection((pods["listener"].status.pod_ip, LISTEN_PORT), timeout=4).close()


def test_workspace_egress_reaches_only_the_http_ports_of_coder_and_the_ingress(kube, pods):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    [traefik] = core.list_namespaced_pod("traefik").items
    coder_ip = core.list_namespaced_pod(PLATFORM, label_selector="app.kubernetes.io/name=coder").items[0].status.pod_ip
    ws, other = pods["ws"], pods["other"]
    assert connects(kube, ws, coder_ip, 8080)  # Coder's HTTP port
    assert connects(kube, ws, traefik.status.pod_ip, 8443)  # the access URL through the ingress controller
    # Traefik's ping/metrics entry point: closed to workspaces, open to a pod without policies
    assert connects(kube, other, traefik.status.pod_ip, 9000)
    assert not connects(kube, ws, traefik.status.pod_ip, 9000)


def test_workspace_egress_misses_the_api_server_and_the_node(testbed, kube, pods):
    ws, other = pods["ws"], pods["other"]
    for host, port in (("kubernetes.default.svc.cluster.local", 443), (testbed.node_ip, 10250)):
        assert connects(kube, other, host, port), f"control: {host}:{port} from a namespace without policies"
        assert not connects(kube, ws, host, port), f"a workspace reached {host}:{port}"
    # the one port the testbed inventory opens on the node by name (namespaces_workspace_egress_extra: its artifact
    # mirror, testbed/svc_60_mirror.sh) is reached, on the same address where the kubelet's port is not
    mirror = (testbed.state / "mirror-url").read_text().strip()
    assert connects(kube, ws, testbed.node_ip, int(mirror.rsplit(":", 1)[1])), f"a workspace cannot reach {mirror}"


def test_workspace_egress_reaches_the_internet_but_not_the_metadata_address(kube, pods, host_listeners):
    ws, other = pods["ws"], pods["other"]
    assert connects(kube, ws, INTERNET_STANDIN, HOST_PORT)
    assert connects(kube, other, METADATA, HOST_PORT)
    assert not connects(kube, ws, METADATA, HOST_PORT)


def test_egress_policy_denies_private_link_local_and_metadata_ranges_in_both_families(kube):
    import ipaddress

    from kubernetes import client

    policy = client.NetworkingV1Api(kube).read_namespaced_network_policy("coderstack-workspaces-egress", WORKSPACES)
    blocks = [peer.ip_block for rule in policy.spec.egress for peer in rule.to or [] if peer.ip_block]
    # the rule to everything else (the inventory's extra rules name single addresses: the testbed's mirror)
    blocks = [b for b in blocks if b.cidr in ("0.0.0.0/0", "::/0")]
    by_family = {
        ipaddress.ip_network(b.cidr).version: [ipaddress.ip_network(e) for e in b._except or []] for b in blocks
    }
    assert set(by_family) == {4, 6}, blocks
    for address in ("169.254.169.254", "10.1.2.3", "192.168.1.1", "127.0.0.1", "fd00:ec2::254", "fe80::1", "::1"):
        ip = ipaddress.ip_address(address)
        assert any(ip in net for net in by_family[ip.version]), f"{address} is not denied: {blocks}"
    for address in ("198.51.100.7", "2001:db8::1"):  # public addresses stay open
        ip = ipaddress.ip_address(address)
        assert not any(ip in net for net in by_family[ip.version]), f"{address} is denied: {blocks}"


def test_coder_sends_a_secure_cookie_hsts_and_no_blanket_cors(testbed, kube):
    import requests
    from kubernetes import client

    core = client.CoreV1Api(kube)
    # carol's password, as the coder_users role keeps it (her email is the inventory's)
    password = base64.b64decode(core.read_namespaced_secret("coder-user-carol", PLATFORM).data["password"]).decode()
    email = "carol@coder.testbed.local"
    resp = requests.post(
        f"{testbed.coder_url}/api/v2/users/login",
        json={"email": email, "password": password},
        headers={"Origin": "https://evil.example"},
        verify=str(testbed.coder_ca),
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    cookie = next((c for c in resp.raw.headers.getlist("Set-Cookie") if c.startswith("coder_session_token=")), None)
    assert cookie is not None, resp.headers
    assert "secure" in [part.strip().lower() for part in cookie.split(";")], cookie
    # Coder sends HSTS with the dashboard's pages (what a browser loads), not with API answers
    page = requests.get(f"{testbed.coder_url}/login", verify=str(testbed.coder_ca), timeout=30)
    assert page.status_code == 200 and "<!doctype html>" in page.text.lower(), page.status_code
    assert page.headers.get("Strict-Transport-Security", "").startswith("max-age=31536000"), page.headers
    assert resp.headers.get("Access-Control-Allow-Origin") not in ("*", "https://evil.example"), resp.headers
    requests.post(
        f"{testbed.coder_url}/api/v2/users/logout",
        headers={"Coder-Session-Token": resp.json()["session_token"]},
        verify=str(testbed.coder_ca),
        timeout=30,
    )


def test_the_platform_runs_above_workspaces_and_limitless_containers_get_defaults(kube):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    pod = carol_pod(kube)
    assert pod.spec.containers[0].resources.limits.get("memory") == "2Gi"  # the template's own limit is kept
    assert (pod.spec.priority or 0) == 0
    coder = core.list_namespaced_pod(PLATFORM, label_selector="app.kubernetes.io/name=coder").items[0].metadata.name
    for name in ("coder-db-0", coder):
        platform = core.read_namespaced_pod(name, PLATFORM)
        assert (platform.spec.priority_class_name, platform.spec.priority) == ("coderstack-platform", 1000000), name
    # a container that sets nothing gets the LimitRange's defaults (dry run: admission runs, nothing is stored)
    bare = pod_manifest("limits-default", WORKSPACES, workspace_image(kube), "true")
    admitted = core.create_namespaced_pod(WORKSPACES, bare, dry_run="All").spec.containers[0].resources
    assert (admitted.limits, admitted.requests) == (
        {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"},
        {"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "256Mi"},
    ), admitted


def _pod(name: str, image: str, memory_limits: list[str]) -> dict:
    manifest = pod_manifest(name, WORKSPACES, image, "true")
    manifest["spec"]["containers"] = [
        {"name": f"c{i}", "image": image, "command": ["true"], "resources": {"limits": {"memory": m}}}
        for i, m in enumerate(memory_limits)
    ]
    return manifest


def test_a_workspace_beyond_the_quota_or_the_container_bounds_is_refused(kube):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(kube)
    image = workspace_image(kube)
    # control: a workspace-sized pod is admitted (dry run: admission runs, nothing is stored)
    core.create_namespaced_pod(WORKSPACES, _pod("quota-ok", image, ["60Gi"]), dry_run="All")
    # each container within the per-container maximum, together beyond the namespace's memory quota (256Gi)
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(WORKSPACES, _pod("quota-over", image, ["60Gi"] * 5), dry_run="All")
    assert refused.value.status == 403 and "exceeded quota: coderstack-workspaces" in refused.value.body, (
        refused.value.body
    )
    # one container beyond the per-container maximum (64Gi)
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(WORKSPACES, _pod("limit-over", image, ["100Gi"]), dry_run="All")
    assert refused.value.status == 403 and "maximum memory usage per Container is 64Gi" in refused.value.body


def test_a_claim_beyond_the_volume_bound_is_refused(kube):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(kube)

    def claim(size: str) -> dict:
        return {
            "metadata": {"name": f"bound-{size.lower()}"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        }

    core.create_namespaced_persistent_volume_claim(WORKSPACES, claim("1Gi"), dry_run="All")  # control
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_persistent_volume_claim(WORKSPACES, claim("300Gi"), dry_run="All")
    assert (
        refused.value.status == 403 and "maximum storage usage per PersistentVolumeClaim is 200Gi" in refused.value.body
    )
