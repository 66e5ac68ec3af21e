"""Pure logic: docker arguments, the Container Apps execution template (fake client), output checks,
kill classification. Neither Docker nor Azure is reachable here; these never touch either."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scanner.cli.main import build_parser
from scanner.model.codec import inventory_to_dict
from scanner.model.limits import GiB, Limits, option_pairs
from scanner.model.types import ImageInfo, Inventory, LayerInfo, OSInfo, Package, Warning_
from scanner.report.inventory_json import inventory_dict
from scanner.sandbox import runner as runner_module
from scanner.sandbox.container_apps import ContainerAppsRunner, ContainerAppsSettings, ScanRequest
from scanner.sandbox.docker_runner import DockerRunner
from scanner.sandbox.errors import JobError
from scanner.sandbox.fetch import FetchedImage
from scanner.sandbox.output import MAX_STRING, parse_inventory
from scanner.sandbox.runner import JobLimits, classify
from scanner.sandbox.runners import limit_args

DIGEST = "sha256:" + "ab" * 32


def test_docker_arguments_isolate_the_child() -> None:
    kwargs = DockerRunner("scanner:1", scan_args=["--limit=max_layers=9"]).run_kwargs(Path("/scratch/l"), JobLimits())
    assert kwargs["image"] == "scanner:1"
    assert kwargs["network_mode"] == "none" and kwargs["read_only"] is True
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["user"] == "65534:65534"
    assert kwargs["volumes"] == {"/scratch/l": {"bind": "/input", "mode": "ro"}}
    assert kwargs["mem_limit"] == 2 * GiB and kwargs["pids_limit"] > 0
    assert "ACRGUARD_REGISTRY_PASSWORD" not in kwargs["environment"]
    assert kwargs["entrypoint"][-2:] == ["-m", "scanner.sandbox.child"]
    assert kwargs["command"] == ["oci:/input", "--limit=max_layers=9"]
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
    assert runner.start(request, JobLimits(wall_seconds=60), Limits(max_layers=9)) == "scan-abc12"
    group, job, template = client.calls[0]
    assert (group, job) == ("rg", "acrguard-scan")
    (container,) = template.containers
    assert container.name == "scanner" and container.image == settings.scanner_image
    assert container.args[:3] == [f"myacr.azurecr.io/team/app@{DIGEST}", "--runner", "none"]
    # Every job limit and every image limit arrives as an argument `acrguard job` reads, whole (not as a
    # difference from defaults), since the execution's environment carries no settings.
    args = build_parser().parse_args(["job", *container.args])
    assert Limits().with_overrides(option_pairs(args.limit, "--limit")) == Limits(max_layers=9)
    assert len(args.limit) == len(Limits.names()) and len(args.job_limit) == len(JobLimits.names())
    assert JobLimits().with_overrides(option_pairs(args.job_limit, "--job-limit")) == JobLimits(wall_seconds=60)
    assert {e.name: e.value for e in container.env}["IMAGE_DIGEST"] == DIGEST
    assert container.resources.cpu == 1.0 and container.resources.memory == "2Gi"
    assert runner.status("scan-abc12") == "Succeeded"


def test_local_runners_get_every_image_limit() -> None:
    arguments = limit_args(Limits(max_layers=9))
    assert arguments[0].startswith("--limit=") and len(arguments) == len(Limits.names())
    pairs = option_pairs([a.removeprefix("--limit=") for a in arguments], "--limit")
    assert Limits().with_overrides(pairs) == Limits(max_layers=9)


def test_container_apps_wants_a_digest() -> None:
    runner = ContainerAppsRunner(ContainerAppsSettings("s", "rg", "j", "img"), _FakeClient())
    with pytest.raises(JobError, match="digest"):
        runner.template(ScanRequest("r.io", "app", "latest"), JobLimits())


LAYER = LayerInfo(0, DIGEST, DIGEST, "application/vnd.oci.image.layer.v1.tar+gzip", 1234, "RUN apk add musl")
INVENTORY = Inventory(
    ImageInfo(
        "oci:/input",
        "sha256:" + "00" * 32,
        DIGEST,
        "linux/amd64",
        OSInfo("alpine", "3.19.1", "", "Alpine Linux", "Alpine Linux v3.19", ("busybox",), "/etc/os-release"),
        (LAYER,),
        "application/vnd.oci.image.manifest.v1+json",
    ),
    "Scanned",
    "",
    (
        Package(
            "musl",
            "1.2.4-r2",
            "Alpine:v3.19",
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64",
            "musl",
            "1.2.4-r2",
            "x86_64",
            ("/lib/apk/db/installed",),
            "apk",
            "apk@1",
            LAYER,
            False,
            (("license", "MIT"), ("maintainer", "Timo Teräs <timo.teras@iki.fi>")),
        ),
    ),
    (Warning_("/usr/lib/x", "unreadable"),),
)


def _doc() -> dict[str, Any]:
    return json.loads(json.dumps(inventory_to_dict(INVENTORY)))  # type: ignore[no-any-return]


FETCHED = FetchedImage("reg.io/app:1", DIGEST, "sha256:" + "11" * 32, Path("/x"))


def test_output_is_the_exact_inventory_relabelled_with_the_trusted_identity() -> None:
    parsed = parse_inventory(json.dumps(_doc()).encode(), 1 << 20, FETCHED)
    trusted = replace(INVENTORY.image, reference="reg.io/app:1", digest=DIGEST, index_digest="sha256:" + "11" * 32)
    # Everything else comes back equal: metadata, layer sizes and media types, the OS's names and warnings.
    assert parsed == replace(INVENTORY, image=trusted)


def _package(d: dict[str, Any]) -> dict[str, Any]:
    package: dict[str, Any] = d["packages"][0]
    return package


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.pop("image"), "the document: missing image"),
        (lambda d: d.update(extra=1), "the document: unexpected extra"),
        (lambda d: d.update(codec=2), "codec is '2'"),
        (lambda d: d.update(codec=True), "codec is 'True'"),
        (lambda d: d.update(status="Pwned"), "status must be one of"),
        (lambda d: _package(d).update(name=["x"]), r"packages\[0\]\.name must be a string"),
        (lambda d: _package(d).update(os_owned="yes"), r"packages\[0\]\.os_owned must be true or false"),
        (lambda d: _package(d).pop("metadata"), r"packages\[0\]: missing metadata"),
        (
            lambda d: _package(d).update(metadata=[["a", "b", "c"]]),
            r"packages\[0\]\.metadata\[0\] must be a \[key, value\] pair",
        ),
        (lambda d: _package(d).update(metadata=[["a", 1]]), r"packages\[0\]\.metadata\[0\]\[1\] must be a string"),
        (lambda d: _package(d)["layer"].update(size=-1), r"packages\[0\]\.layer\.size must be a whole number"),
        (lambda d: d["image"]["layers"][0].update(index=True), r"image\.layers\[0\]\.index must be a whole number"),
        (lambda d: d["image"]["layers"][0].update(size=2**63), r"image\.layers\[0\]\.size must be a whole number"),
        (lambda d: d["image"]["os"].update(id_like="busybox"), r"image\.os\.id_like must be a list"),
        (lambda d: d.update(warnings=[{}]), r"warnings\[0\]: missing message, where"),
        (lambda d: _package(d).update(purl="p" * (MAX_STRING + 1)), r"packages\[0\]\.purl is longer than 65536"),
    ],
)
def test_malformed_output_is_rejected_naming_where(mutate: Any, where: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(JobError, match=rf"^sandbox output: {where}"):
        parse_inventory(json.dumps(doc).encode(), 1 << 20, FETCHED)


def test_output_bounds_and_syntax() -> None:
    with pytest.raises(JobError, match="output_bytes"):
        parse_inventory(b"{" + b" " * 100 + b"}", 50, FETCHED)
    with pytest.raises(JobError, match="not JSON"):
        parse_inventory(b"[" * 100000, 1 << 20, FETCHED)
    # The user-facing inventory document is not what the child prints any more: refused, not half-read.
    with pytest.raises(JobError, match="the document: missing codec"):
        parse_inventory(json.dumps(inventory_dict(INVENTORY)).encode(), 1 << 20, FETCHED)


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


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling-fallback"])
def test_a_child_is_seen_to_exit_or_to_outlive_its_time(pidfd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait behind the wall-time limit: the exit is noticed through a pidfd (no polling sleeps), or by
    polling where the kernel has none; a child still running at the deadline is reported so."""
    if not pidfd:

        def no_pidfd(pid: int) -> int:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    quick = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert runner_module._exited_within(quick, 30) is True
    assert quick.returncode == 3
    assert runner_module._exited_within(quick, 30) is True  # reaped already: not waited on again
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert runner_module._exited_within(sleeper, 0.2) is False
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
