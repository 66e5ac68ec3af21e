"""Which layers a sandboxed child replays, written by the trusted side into the layout it mounts read-only.

The layer-prefix cache (`scanner.inventory.prefix_cache`) runs an image's replay in segments, one child each:
a child starts over a prefix state the parent restored from the cache (`STATE_FILE`) and either goes to the
end (the inventory) or stops at a boundary and prints the state there, which the parent checks and keeps.
One child per segment, so that a state is only ever made by a child that read nothing but its prefix's
layers: a hostile layer above cannot reach the state of the base below it.
"""

from __future__ import annotations

import json
from pathlib import Path

from scanner.inventory.build import Segment

SEGMENT_FILE = "acrguard-segment.json"
STATE_FILE = "acrguard-prefix.state"
# Beside a warm child's layout, in its inbox: the state it decodes while it waits (`scanner.sandbox.warm`).
PRELOAD_FILE = "acrguard-preload.state"
# The child's exit status when a restored state cannot replay this image (`prefix_state.PrefixContentMissing`):
# the parent replays from the first layer instead.
EXIT_PREFIX_MISSING = 3


def clear_segment(layout: Path) -> None:
    (layout / STATE_FILE).unlink(missing_ok=True)
    (layout / SEGMENT_FILE).unlink(missing_ok=True)


def write_segment(layout: Path, segment: Segment) -> None:
    """Replace the segment (and state) files of `layout`; the parent calls it before each child."""
    clear_segment(layout)
    if segment.state is not None:
        (layout / STATE_FILE).write_bytes(segment.state)
    doc = {"start": segment.start, "stop": segment.stop, "max_state_bytes": segment.max_state_bytes}
    (layout / SEGMENT_FILE).write_text(json.dumps(doc))


def read_segment(image: str) -> Segment | None:
    """The segment the parent wrote beside the layout `image` names (`oci:/input`), None when there is none
    (a whole replay, as `acrguard job` runs it)."""
    if not image.startswith("oci:"):
        return None
    layout = Path(image.removeprefix("oci:"))
    try:
        doc = json.loads((layout / SEGMENT_FILE).read_text())
    except FileNotFoundError:
        return None
    state = (layout / STATE_FILE).read_bytes() if (layout / STATE_FILE).exists() else None
    return Segment(int(doc["start"]), state, doc["stop"], int(doc["max_state_bytes"]))


def read_preload(image: str) -> bytes | None:
    """The state a warm child was given to decode ahead, beside the layout `image` names; None if none."""
    if not image.startswith("oci:"):
        return None
    preload = Path(image.removeprefix("oci:")).parent / PRELOAD_FILE
    return preload.read_bytes() if preload.is_file() else None
