"""The production fetch step: the sandboxed scan job (`scanner.jobs.job`) for a queued request, its
checked inventory document turned back into an `Inventory` for assessment and storage."""

from __future__ import annotations

from typing import Any

from scanner.inventory import ScanOptions
from scanner.jobs.sandbox import JobLimits, SandboxRunner
from scanner.models import ImageInfo, Inventory, LayerInfo, OSInfo, Package, Warning_
from scanner.queue.interface import ScanRequest
from scanner.service.pipeline import FetchAndInventory


def request_reference(request: ScanRequest) -> str:
    """Pinned by digest: a tag may have moved since the push."""
    return f"docker://{request.registry}/{request.repository}@{request.digest}"


def sandboxed_fetch(
    runner: SandboxRunner, options: ScanOptions | None = None, limits: JobLimits | None = None
) -> FetchAndInventory:
    options = options or ScanOptions()
    limits = limits or JobLimits()

    def fetch(request: ScanRequest) -> Inventory:
        # Imported here: the job pulls in the registry SDK, which event handling never needs.
        from scanner.jobs.job import run_scan_job

        return inventory_from_document(run_scan_job(request_reference(request), options, runner, limits))

    return fetch


def inventory_from_document(doc: dict[str, Any]) -> Inventory:
    """The inverse of `scanner.output.inventory_json.inventory_dict` for what matching needs. The job's
    output was already checked key by key (`scanner.jobs.output`); metadata the document does not carry
    stays empty."""
    image = doc["image"]
    os_part = image.get("os")
    info = ImageInfo(
        reference=image["reference"],
        digest=image["digest"],
        config_digest=image["config_digest"],
        platform=image["platform"],
        os=OSInfo(os_part["id"], os_part["version"], os_part["codename"]) if os_part else None,
        layers=tuple(_image_layer(layer) for layer in image["layers"]),
        index_digest=image.get("index_digest", ""),
    )
    packages = tuple(_package(p) for p in doc["packages"])
    # Warnings arrive as "where: message" lines; the split is only for display.
    warnings = tuple(Warning_(*(w.split(": ", 1) if ": " in w else ("", w))) for w in doc["warnings"])
    return Inventory(info, doc["status"], doc["reason"], packages, warnings)


def _layer(data: dict[str, Any] | None) -> LayerInfo | None:
    return None if data is None else _image_layer(data)


def _image_layer(data: dict[str, Any]) -> LayerInfo:
    return LayerInfo(int(data["index"]), data["digest"], data.get("diff_id", ""), created_by=data.get("created_by", ""))


def _package(data: dict[str, Any]) -> Package:
    purl = str(data["purl"])
    kind = purl[4:].split("/", 1)[0] if purl.startswith("pkg:") else ""
    return Package(
        name=data["name"],
        version=data["version"],
        ecosystem=data["ecosystem"],
        purl=purl,
        source_name=data["source_name"],
        source_version=data["source_version"],
        arch=data["arch"],
        locations=tuple(data.get("locations", ())),
        kind=kind,
        detector=data["detector"],
        layer=_layer(data.get("layer")),
        os_owned=bool(data.get("os_owned", False)),
    )
