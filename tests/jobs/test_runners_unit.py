"""Pure logic: docker arguments, the Container Apps execution template (fake client), output checks,
kill classification. Neither Docker nor Azure is reachable here; these never touch either."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from scanner.jobs.container_apps import ContainerAppsRunner, ContainerAppsSettings, ScanRequest
from scanner.jobs.docker_runner import DockerRunner
from scanner.jobs.errors import JobError
from scanner.jobs.fetch import FetchedImage
from scanner.jobs.output import parse_inventory
from scanner.jobs.sandbox import JobLimits, classify
from scanner.limits import GiB

DIGEST = "sha256:" + "ab" * 32


def test_docker_arguments_isolate_the_child() -> None:
    kwargs = DockerRunner("scanner:1", scan_args=["--limit=max_layers=9"]).run_kwargs(Path("/scratch/l"), JobLimits())
    assert kwargs["image"] == "scanner:1"
    assert kwargs["network_mode"] == "none" and kwargs["read_only"] is True
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["user"] == "65534:65534"
    assert kwargs["volumes"] == {"/scratch/l": {"bind": "/input", "mode": "ro"}}
    assert kwargs["mem_limit"] == 2 * GiB and kwargs["pids_limit"] > 0
    assert "ACRGUARD_REGISTRY_PASSWORD" not in kwargs["environment"]
    assert kwargs["command"][:2] == ["sbom", "oci:/input"] and kwargs["command"][-1] == "--limit=max_layers=9"
    assert {u.name for u in kwargs["ulimits"]} == {"nofile", "fsize", "cpu"}


class _Poller:
    def result(self) -> Any:
        return type("Execution", (), {"name": "scan-abc12"})()


class _FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.jobs = self

    def begin_start(self, group: str, job: str, template: Any) -> _Poller:
        self.calls.append((group, job, template))
        return _Poller()

    def job_execution(self, group: str, job: str, name: str) -> Any:
        self.calls.append((group, job, name))
        return type("Execution", (), {"status": "Succeeded"})()


def test_container_apps_template_and_start() -> None:
    client = _FakeClient()
    settings = ContainerAppsSettings("sub", "rg", "acrguard-scan", "myacr.azurecr.io/acrguard-job@" + DIGEST)
    runner = ContainerAppsRunner(settings, client)
    request = ScanRequest("myacr.azurecr.io", "team/app", DIGEST)
    assert runner.start(request, JobLimits(wall_seconds=60)) == "scan-abc12"
    group, job, template = client.calls[0]
    assert (group, job) == ("rg", "acrguard-scan")
    (container,) = template.containers
    assert container.name == "scanner" and container.image == settings.scanner_image
    assert container.args == [
        f"myacr.azurecr.io/team/app@{DIGEST}",
        "--runner",
        "none",
        "--job-limit",
        "wall_seconds=60",
    ]
    assert {e.name: e.value for e in container.env}["IMAGE_DIGEST"] == DIGEST
    assert container.resources.cpu == 1.0 and container.resources.memory == "2Gi"
    assert runner.status("scan-abc12") == "Succeeded"


def test_container_apps_wants_a_digest() -> None:
    runner = ContainerAppsRunner(ContainerAppsSettings("s", "rg", "j", "img"), _FakeClient())
    with pytest.raises(JobError, match="digest"):
        runner.template(ScanRequest("r.io", "app", "latest"), JobLimits())


FETCHED = FetchedImage("reg.io/app:1", DIGEST, "", Path("/x"))


def _doc() -> dict[str, Any]:
    layer = {"index": 0, "digest": DIGEST, "diff_id": DIGEST, "created_by": ""}
    return {
        "image": {
            "reference": "oci:/input",
            "digest": "sha256:" + "00" * 32,
            "config_digest": DIGEST,
            "platform": "linux/amd64",
            "os": {"id": "alpine", "version": "3.19", "codename": ""},
            "index_digest": "",
            "layers": [layer],
        },
        "status": "Scanned",
        "reason": "",
        "packages": [
            {
                **dict.fromkeys(("name", "version", "ecosystem", "purl", "source_name", "source_version"), "x"),
                "arch": "",
                "detector": "apk@1",
                "layer": layer,
                "locations": ["/lib/apk/db/installed"],
                "os_owned": False,
            }
        ],
        "warnings": [],
    }


def test_output_is_relabelled_with_the_trusted_identity() -> None:
    doc = parse_inventory(json.dumps(_doc()).encode(), 1 << 20, FETCHED)
    assert doc["image"]["reference"] == "reg.io/app:1" and doc["image"]["digest"] == DIGEST


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("image"),
        lambda d: d.update(status="Pwned"),
        lambda d: d["packages"][0].update(name=["x"]),
        lambda d: d["packages"][0].update(os_owned="yes"),
        lambda d: d["image"]["layers"].append({"index": True, "digest": "", "diff_id": "", "created_by": ""}),
        lambda d: d.update(warnings=[{}]),
    ],
)
def test_malformed_output_is_rejected(mutate: Any) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(JobError, match="sandbox output"):
        parse_inventory(json.dumps(doc).encode(), 1 << 20, FETCHED)


def test_output_bounds_and_syntax() -> None:
    with pytest.raises(JobError, match="output_bytes"):
        parse_inventory(b"{" + b" " * 100 + b"}", 50, FETCHED)
    with pytest.raises(JobError, match="not JSON"):
        parse_inventory(b"[" * 100000, 1 << 20, FETCHED)


def test_classify_signals_and_last_words() -> None:
    assert classify(-signal.SIGXCPU, b"") == "cpu-time"
    assert classify(128 + signal.SIGXCPU, b"") == "cpu-time"
    assert classify(2, b"acrguard: MemoryError: \n") == "memory"
    assert classify(2, b"OSError: [Errno 27] File too large") == "file-size"
    assert classify(2, b"acrguard: layer x: bad") is None
    assert classify(0, b"MemoryError") is None


def test_job_limit_overrides() -> None:
    assert JobLimits().with_overrides({"wall-seconds": "5"}).wall_seconds == 5
    with pytest.raises(JobError):
        JobLimits().with_overrides({"nope": "1"})
    with pytest.raises(JobError):
        JobLimits().with_overrides({"cpu_seconds": "0"})
