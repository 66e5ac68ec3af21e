"""CycloneDX (1.6) SBOM through cyclonedx-python-lib."""

from __future__ import annotations

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from scanner import __version__
from scanner.model.types import Inventory


def to_cyclonedx(inv: Inventory) -> str:
    bom = Bom()
    image = inv.image
    root = Component(
        name=image.reference,
        version=image.digest or image.config_digest or None,
        type=ComponentType.CONTAINER,
        bom_ref=f"image:{image.digest or image.config_digest or image.reference}",
    )
    if image.os is not None:
        root.properties.add(Property(name="acrguard:os", value=f"{image.os.id} {image.os.version}".strip()))
    root.properties.add(Property(name="acrguard:status", value=inv.status))
    if inv.status == "Incomplete":  # what was not read, so that the SBOM is not taken for the whole image
        root.properties.add(Property(name="acrguard:reason", value=inv.reason))
    if image.platform:
        root.properties.add(Property(name="acrguard:platform", value=image.platform))
    bom.metadata.component = root
    bom.metadata.properties.add(Property(name="acrguard:version", value=__version__))
    seen: set[str] = set()
    components: list[Component] = []
    for pkg in sorted(inv.packages, key=lambda p: (p.purl, p.locations)):
        ref = pkg.purl + ("#" + pkg.locations[0] if pkg.locations else "")
        if ref in seen:
            continue
        seen.add(ref)
        component = Component(
            name=pkg.name,
            version=pkg.version,
            type=ComponentType.LIBRARY,
            purl=PackageURL.from_string(pkg.purl) if pkg.purl else None,
            bom_ref=ref,
        )
        component.properties.add(Property(name="acrguard:ecosystem", value=pkg.ecosystem or "unknown"))
        component.properties.add(Property(name="acrguard:detector", value=pkg.detector))
        # installed, lockfile, binary or runtime: a lockfile entry is what was resolved, not proof it is there
        component.properties.add(Property(name="acrguard:evidence", value=pkg.evidence))
        if pkg.source_name:
            component.properties.add(Property(name="acrguard:source_name", value=pkg.source_name))
            component.properties.add(Property(name="acrguard:source_version", value=pkg.source_version))
        if pkg.layer is not None:
            component.properties.add(Property(name="acrguard:layer_digest", value=pkg.layer.digest or "none"))
        for location in pkg.locations:
            component.properties.add(Property(name="acrguard:location", value=location))
        bom.components.add(component)
        components.append(component)
    # What `Bom.register_dependency(root, components)` records, built at once: it looks each component up
    # among the dependencies registered so far, quadratic in the number of packages.
    bom.dependencies.update(
        [
            Dependency(ref=root.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in components]),
            *(Dependency(ref=c.bom_ref) for c in components),
        ]
    )
    return JsonV1Dot6(bom).output_as_string(indent=2)
