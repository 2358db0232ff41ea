# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Options every Coder module shares: where Coder is, how to trust it, and where its API token comes from."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  coder_url:
    description: Base URL of the Coder deployment, e.g. C(https://coder.example.com) (the API is under C(/api/v2)).
    type: str
    required: true
    aliases: [url]
  coder_token:
    description:
      - Coder API token (C(Coder-Session-Token)).
      - When not given, the token is read from key O(token_key) of the Kubernetes Secret O(token_secret).
    type: str
    aliases: [token]
  token_secret:
    description:
      - Name of a Kubernetes Secret holding the Coder API token (C(playbooks/coder_admin.yml) keeps the admin's
        token in C(coder-admin-token)); used when O(coder_token) is not given.
      - The Secret is read through the C(kubernetes.core) client with O(kubeconfig) and O(context).
      - When the Secret or its key does not exist, the module fails saying to run C(playbooks/coder_admin.yml) or
        to pass O(coder_token).
    type: str
  token_namespace:
    description: Namespace of O(token_secret) (required with it).
    type: str
  token_key:
    description: Key of the token in O(token_secret).
    type: str
    default: token
  kubeconfig:
    description:
      - Kubeconfig file for the Kubernetes API (reading O(token_secret)).
      - Unset (or empty) uses C(KUBECONFIG), C(~/.kube/config) or the in-cluster config, as C(kubernetes.core) does.
    type: path
  context:
    description: Context in the kubeconfig; the current context when unset or empty.
    type: str
  ca_path:
    description: CA bundle (PEM) to verify Coder's TLS certificate with; unset or empty uses the system CAs.
    type: path
  validate_certs:
    description: Verify Coder's TLS certificate. Turn off only for throwaway setups.
    type: bool
    default: true
  timeout:
    description: Seconds per HTTP request.
    type: int
    default: 30
  kube_service:
    description:
      - Reach Coder through the Kubernetes API server's service proxy instead of O(coder_url), as
        C(<namespace>/<service>:<port name>), e.g. C(coder/coder:http).
      - The API server authenticates the request with O(kubeconfig) and O(context) (which need C(get) on
        C(services/proxy) in that namespace). Coder is then used from inside the cluster before anything exposes
        it; the C(coder) role creates the first owner this way before it opens the Ingress.
      - O(ca_path) and O(validate_certs) do not apply then; the kubeconfig's CA verifies the API server.
      - Unset or empty uses O(coder_url).
    type: str
  bypass_ratelimit:
    description:
      - Send C(X-Coder-Bypass-Ratelimit) with the module's token, so that Coder's rate limits (12 file uploads and
        512 API calls a minute per user) do not slow bulk work down.
      - Coder honours it for a user with the owner role only; with anyone else's token Coder refuses every request
        (HTTP 428) and the module fails saying so. Calls the module makes with another token (a user's login when
        it checks a password) never carry it.
      - The roles set it with the admin's token, the first user's, which is the owner
        (C(coderstack_coder_bypass_ratelimit)).
    type: bool
    default: false
requirements:
  - kubernetes (Python) and the C(kubernetes.core) collection, to read O(token_secret)
"""
