# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Options every Coder module shares: where Coder is and how to trust it."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  coder_url:
    description: Base URL of the Coder deployment, e.g. C(https://coder.example.com) (the API is under C(/api/v2)).
    type: str
    required: true
    aliases: [url]
  ca_path:
    description: CA bundle (PEM) to verify Coder's TLS certificate with.
    type: path
  validate_certs:
    description: Verify Coder's TLS certificate. Turn off only for throwaway setups.
    type: bool
    default: true
  timeout:
    description: Seconds per HTTP request.
    type: int
    default: 30
"""
