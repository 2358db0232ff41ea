# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The cluster connection of the collection's Kubernetes modules (k8s_read, k8s_wait_report): module_utils/kube.py's
KUBE_CONNECTION_SPEC, the options the action group coderstack.platform.kube gets from coderstack_kube_auth."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file.
      - Unset (or empty) uses C(KUBECONFIG), C(~/.kube/config) or the in-cluster config, as C(kubernetes.core) does.
    type: path
  context:
    description: Context in the kubeconfig; the current context when omitted or empty.
    type: str
requirements:
  - kubernetes (Python) and the C(kubernetes.core) collection
"""
