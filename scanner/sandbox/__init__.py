"""The sandboxed scan job: a trusted fetch into a scratch OCI layout, an untrusted parse in a sandbox.

`fetch` (network, credentials) copies one image's blobs, digest-verified, into a fresh layout;
a `SandboxRunner` runs `python -m scanner.sandbox.child oci:/input` over it with no network, no credentials
and resource limits; `output` checks the child's JSON before anyone trusts it; `job` ties them together.
"""

from scanner.sandbox.errors import JobError
from scanner.sandbox.runner import JobLimits, SandboxResult, SandboxRunner

__all__ = ["JobError", "JobLimits", "SandboxResult", "SandboxRunner"]
