# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every Kubernetes access of the collection's plugins, through kubernetes.core's client
(``ansible_collections.kubernetes.core.plugins.module_utils.k8s.client.get_api_client``).

* :func:`api_client` builds the client from ``kubeconfig`` and ``context`` only (unset or empty: ``KUBECONFIG``,
  ``~/.kube/config`` or the in-cluster config, as kubernetes.core does). The module itself is not handed to
  ``get_api_client``: it would read the Coder modules' own ``username``, ``password`` and ``validate_certs`` as
  Kubernetes credentials.
* :class:`Secrets` reads and writes keys of Opaque Secrets (the Coder API token, the tokens coder_token keeps).

The kubernetes Python package and the kubernetes.core collection are imported the way kubernetes.core's modules
do: a missing one raises :class:`KubeError` naming what to install when a client is needed, not at import time.
"""

import base64

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

    HAS_K8S_CORE = True
    K8S_CORE_ERROR = None
except ImportError as e:  # the collection is missing (or the kubernetes package it imports lazily is)
    HAS_K8S_CORE = False
    K8S_CORE_ERROR = str(e)

try:
    from kubernetes.dynamic.exceptions import NotFoundError

    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False

    class NotFoundError(Exception):
        """Stand-in so ``except NotFoundError`` works without the kubernetes package (never raised)."""


MANAGED_BY = {"app.kubernetes.io/managed-by": "coderstack"}
# The cluster connection options of the collection's Kubernetes modules (doc fragment coderstack.platform.kube).
KUBE_CONNECTION_SPEC = {"kubeconfig": {"type": "path"}, "context": {"type": "str"}}


class KubeError(Exception):
    """The Kubernetes API cannot be used (missing library, bad kubeconfig/context); the message says why."""


def api_client(kubeconfig=None, context=None):
    """kubernetes.core's K8SClient for ``kubeconfig``/``context`` (empty values count as unset)."""
    if not HAS_KUBERNETES:
        raise KubeError("the kubernetes Python package is required on the controller (pip install kubernetes)")
    if not HAS_K8S_CORE:
        raise KubeError(
            "the kubernetes.core collection is required (ansible-galaxy collection install kubernetes.core): "
            + K8S_CORE_ERROR
        )
    try:
        return get_api_client(kubeconfig=kubeconfig or None, context=context or None)
    except Exception as e:
        raise KubeError(f"cannot load the Kubernetes configuration ({_where(kubeconfig, context)}): {e}") from e


def _where(kubeconfig, context):
    where = f"kubeconfig {kubeconfig}" if kubeconfig else "KUBECONFIG, ~/.kube/config or the in-cluster config"
    return where + (f", context {context}" if context else "")


class Secrets:
    """Keys of Opaque Secrets, through one lazily built kubernetes.core client."""

    def __init__(self, kubeconfig=None, context=None):
        self.kubeconfig = kubeconfig or None
        self.context = context or None
        self._client = None
        self._resource = None

    def _api(self):
        if self._client is None:
            self._client = api_client(self.kubeconfig, self.context)
            self._resource = self._client.resource("Secret", "v1")
        return self._client, self._resource

    def read(self, namespace, name):
        """(the Secret as a dict, {key: str}) or (None, {}) when it does not exist."""
        client, resource = self._api()
        try:
            obj = client.get(resource, name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None, {}
        data = {k: base64.b64decode(v).decode("utf-8") for k, v in (obj.get("data") or {}).items()}
        return obj, data

    def write(self, namespace, name, values, existing=None, labels=None):
        """Create the Secret or merge ``values`` into ``existing`` (replaced with its resourceVersion, so a
        concurrent change fails instead of being overwritten). Returns the stored Secret as a dict."""
        client, resource = self._api()
        enc = {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in values.items()}
        if existing is None:
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
                "type": "Opaque",
                "data": enc,
            }
            return client.create(resource, body, namespace=namespace).to_dict()
        body = dict(existing)
        body["data"] = dict(existing.get("data") or {}, **enc)
        meta = dict(existing.get("metadata") or {})
        if labels:
            meta["labels"] = dict(meta.get("labels") or {}, **labels)
        body["metadata"] = meta
        return client.replace(resource, body, namespace=namespace).to_dict()


def resource_version(obj):
    """``metadata.resourceVersion`` of an object dict (None without one)."""
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


class ServiceProxy:
    """How to reach a Service's port through the Kubernetes API server's service proxy
    (``/api/v1/namespaces/<ns>/services/<name>:<port>/proxy``): from inside the cluster's trust boundary, with the
    kubeconfig's credentials, without an Ingress, a LoadBalancer or a node port.

    ``url`` is the proxy's base URL; ``ssl_context`` verifies the API server and presents the client certificate
    when the kubeconfig has one; :meth:`headers` gives the credentials the kubeconfig sends as headers (a bearer
    token, refreshed by the client's hook, e.g. an exec plugin's), fresh for each request. The API server
    authenticates the request and drops its ``Authorization`` header before proxying, so the service never sees it.
    """

    def __init__(self, kubeconfig=None, context=None, namespace=None, service=None, port="http"):
        import ssl  # only the proxy needs it

        self.configuration = api_client(kubeconfig, context).configuration
        cfg = self.configuration
        path = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"
        self.url = cfg.host.rstrip("/") + path
        self.ssl_context = None
        if self.url.startswith("https://"):
            ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
            if not cfg.verify_ssl:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if cfg.cert_file:
                ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
            self.ssl_context = ctx

    def headers(self):
        """The kubeconfig's header credentials (``auth_settings`` of the kubernetes client's Configuration)."""
        out = {}
        for setting in self.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                out[setting["key"]] = setting["value"]
        return out
