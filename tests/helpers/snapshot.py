"""Before/after snapshots of what coderstack owns, to prove a refused run changed nothing.

Only coderstack's own objects are covered (by name or by its labels), never "everything in the namespace": other
work (Coder workspaces, their pods and PVCs named coder-<owner>-<workspace>) may come and go in the same namespace
while a test runs.
"""

from __future__ import annotations

# Secrets the roles write (postgres, ingress, coder_admin, postgres_backup); coder-user-* are found by label.
SECRET_NAMES = (
    "coder-db-url",
    "coder-db-credentials",
    "coder-admin",
    "coder-admin-token",
    "coder-tls",
    "coderstack-ca",
    "coder-db-tls",
    "coder-db-backup-env",
)


def _rv(items) -> dict[str, str]:
    return {i.metadata.name: i.metadata.resource_version for i in items}


def kube_snapshot(kube, namespace: str = "coder", release: str = "coder") -> dict:
    """resourceVersions of coderstack's objects in NAMESPACE (the Deployment's generation): its Secrets (named,
    coder-user-* and the Helm release Secrets of RELEASE), the PostgreSQL StatefulSet and Service, Coder's Deployment,
    ConfigMaps and Ingresses that coderstack labels, and the namespace itself. Missing objects are absent from the
    dict."""
    from kubernetes import client

    core, apps, net = client.CoreV1Api(kube), client.AppsV1Api(kube), client.NetworkingV1Api(kube)
    try:
        ns = core.read_namespace(namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    secrets = core.list_namespaced_secret(namespace).items
    owned = [
        s
        for s in secrets
        if s.metadata.name in SECRET_NAMES
        or "coderstack.io/coder-user" in (s.metadata.labels or {})
        or ((s.metadata.labels or {}).get("owner") == "helm" and (s.metadata.labels or {}).get("name") == release)
    ]
    managed = "app.kubernetes.io/managed-by=coderstack"
    snap = {
        "namespace": {namespace: ns.metadata.resource_version},
        "secrets": _rv(owned),
        "statefulsets": _rv(
            s for s in apps.list_namespaced_stateful_set(namespace).items if s.metadata.name == "coder-db"
        ),
        # a Deployment's status (hence resourceVersion) moves with its pods; its generation moves with its spec only
        "deployments": {
            d.metadata.name: f"generation {d.metadata.generation}"
            for d in apps.list_namespaced_deployment(namespace).items
            if d.metadata.name == release
        },
        "services": _rv(
            s for s in core.list_namespaced_service(namespace).items if s.metadata.name in ("coder-db", release)
        ),
        "configmaps": _rv(
            c
            for c in core.list_namespaced_config_map(namespace).items
            if c.metadata.name == "coder-ca"
            or (c.metadata.labels or {}).get("app.kubernetes.io/managed-by") == "coderstack"
        ),
        "ingresses": _rv(i for i in net.list_namespaced_ingress(namespace).items if i.metadata.name == release),
        "pvcs": _rv(
            p
            for p in core.list_namespaced_persistent_volume_claim(namespace, label_selector=managed).items
            if p.metadata.name.startswith(("data-coder-db", "coder-db-backups"))
        ),
    }
    return snap


def coder_snapshot(get) -> dict:
    """Coder's users and templates as the API shows them (GET with the admin token through ``get(path)``)."""
    users = get("/api/v2/users?limit=1000")
    templates = get("/api/v2/templates")
    return {
        "users": sorted(
            (
                u["username"],
                u["email"],
                u.get("name"),
                u["status"],
                u.get("login_type"),
                sorted(r["name"] for r in u.get("roles") or []),
            )
            for u in users["users"]
        ),
        "templates": sorted((t["name"], t["active_version_id"], t.get("updated_at")) for t in templates),
    }


def diff(before: dict, after: dict) -> list[str]:
    """What changed between two snapshots (empty when nothing did)."""
    out = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if isinstance(b, dict) and isinstance(a, dict):
            for name in sorted(set(b) | set(a)):
                if b.get(name) != a.get(name):
                    out.append(f"{key}/{name}: {b.get(name)!r} -> {a.get(name)!r}")
        elif b != a:
            out.append(f"{key}: {b!r} -> {a!r}")
    return out
