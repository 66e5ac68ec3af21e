"""Azure Container Apps job runner: one job execution per scan, the image, name and resources passed in
every execution's template override (reference §6). The execution fetches and parses by itself
(`acrguard job IMAGE --runner none`): the job container, with its own AcrPull identity and no access to
the function's secrets, is the isolation boundary. UNTESTED against Azure (not reachable where this was
written): the template building and the client calls are unit-tested with a fake client only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanner.model.limits import GiB, Limits
from scanner.sandbox.errors import JobError
from scanner.sandbox.runner import JobLimits

CONTAINER_NAME = "scanner"


@dataclass(frozen=True)
class ScanRequest:
    registry: str  # myregistry.azurecr.io
    repository: str
    digest: str  # sha256:...

    @property
    def reference(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


@dataclass(frozen=True)
class ContainerAppsSettings:
    subscription_id: str
    resource_group: str
    job_name: str
    scanner_image: str  # the image built from the Dockerfile, pinned by digest in production
    cpu: float = 1.0


class ContainerAppsRunner:
    def __init__(self, settings: ContainerAppsSettings, client: Any = None) -> None:
        self.settings = settings
        self._client = client

    def template(self, request: ScanRequest, limits: JobLimits, image_limits: Limits | None = None) -> Any:
        """The per-execution override: image, name and resources are passed every time (§6), and so is every
        job limit and image limit, as arguments: the execution's environment carries no settings."""
        from azure.mgmt.appcontainers.models import (
            ContainerResources,
            EnvironmentVar,
            JobExecutionContainer,
            JobExecutionTemplate,
        )

        if not request.digest.startswith("sha256:"):
            raise JobError(f"container apps: {request.reference}: scan requests name images by sha256 digest")
        memory = f"{max(limits.memory_bytes / GiB, 0.5):g}Gi"
        container = JobExecutionContainer(
            name=CONTAINER_NAME,
            image=self.settings.scanner_image,
            args=[request.reference, "--runner", "none", *_limit_args(limits, image_limits or Limits())],
            env=[
                EnvironmentVar(name="IMAGE_REGISTRY", value=request.registry),
                EnvironmentVar(name="IMAGE_REPOSITORY", value=request.repository),
                EnvironmentVar(name="IMAGE_DIGEST", value=request.digest),
            ],
            resources=ContainerResources(cpu=self.settings.cpu, memory=memory),
        )
        return JobExecutionTemplate(containers=[container])

    def start(self, request: ScanRequest, limits: JobLimits, image_limits: Limits | None = None) -> str:
        """Start one execution; its name, for `status`."""
        client = self._client or self._make_client()
        template = self.template(request, limits, image_limits)
        poller = client.jobs.begin_start(self.settings.resource_group, self.settings.job_name, template=template)
        result = poller.result()
        name = getattr(result, "name", None)
        if not isinstance(name, str) or not name:
            raise JobError(f"container apps: job {self.settings.job_name} started without an execution name")
        return name

    def status(self, execution_name: str) -> str:
        client = self._client or self._make_client()
        execution = client.job_execution(self.settings.resource_group, self.settings.job_name, execution_name)
        return str(getattr(execution, "status", "") or "Unknown")

    def _make_client(self) -> Any:
        from azure.identity import DefaultAzureCredential
        from azure.mgmt.appcontainers import ContainerAppsAPIClient

        self._client = ContainerAppsAPIClient(DefaultAzureCredential(), self.settings.subscription_id)
        return self._client


def _limit_args(limits: JobLimits, image_limits: Limits) -> list[str]:
    """Every limit travels as an argument (the execution's environment holds only the request): the image
    limits as `acrguard job`'s `--limit`, which hands them on to the parse, the job's own as `--job-limit`."""
    args: list[str] = []
    for name in Limits.names():
        args += ["--limit", f"{name}={getattr(image_limits, name)}"]
    for name in JobLimits.names():
        args += ["--job-limit", f"{name}={getattr(limits, name)}"]
    return args
