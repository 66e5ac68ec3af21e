"""The squashed filesystem of an image as its layers are replayed (pure, in memory).

Only what resolution and detectors need is kept: directories, symlinks, and the files some detector
asked for (with their content). Paths are resolved like the kernel does inside a container's root:
`..` at the root stays at the root and absolute link targets restart at the image root, so nothing
here can ever name a path outside the image. Each node records the layer that last wrote it, which is
how whiteouts in a layer remove only what lower layers made.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator

from scanner.model.errors import LimitExceededError

# Bytes a detector may parse without copying them: the bytes themselves, a read-only map of a spilled file, or
# a view into a map of a file read where it lies (indexing, slicing, comparing, `struct.unpack_from`, `re` and
# `memoryview` behave as on bytes; `find` and the other bytes methods are not there on a memoryview).
ByteView = bytes | mmap.mmap | memoryview


class Content:
    """Captured bytes of one file: held in memory or spilled to a scratch file by the content store."""

    __slots__ = ("_data", "_reader", "_viewer", "size")

    def __init__(
        self,
        size: int,
        data: bytes | None = None,
        reader: Callable[[], bytes] | None = None,
        viewer: Callable[[], ByteView] | None = None,
    ):
        self.size = size
        self._data = data
        self._reader = reader
        self._viewer = viewer

    def read(self) -> bytes:
        if self._data is not None:
            return self._data
        assert self._reader is not None
        return self._reader()

    def view(self) -> ByteView:
        """The content without copying it where it was spilled: a program's detectors look at a few sections
        of a file that may be tens of megabytes."""
        if self._data is None and self._viewer is not None:
            return self._viewer()
        return self.read()


class Unread(Content):
    """A file a detector asked for that was too large to keep (`max_file_size`): its size and first bytes
    only, so that the detector can say it could not read it rather than find nothing there."""

    __slots__ = ("head",)
    HEAD = 64

    def __init__(self, size: int, head: bytes) -> None:
        super().__init__(size, data=None, reader=None, viewer=None)
        self.head = head

    def read(self) -> bytes:
        raise LimitExceededError(f"{self.size} bytes is over max_file_size: not read")


class Node:
    __slots__ = ("layer",)

    def __init__(self, layer: int) -> None:
        self.layer = layer


class Dir(Node):
    __slots__ = ("children",)

    def __init__(self, layer: int) -> None:
        super().__init__(layer)
        self.children: dict[str, Node] = {}


class Link(Node):
    __slots__ = ("target",)

    def __init__(self, layer: int, target: str) -> None:
        super().__init__(layer)
        self.target = target


class File(Node):
    __slots__ = ("content",)

    def __init__(self, layer: int, content: Content) -> None:
        super().__init__(layer)
        self.content = content


class PathError(Exception):
    """A path that cannot be resolved or written (loop, depth, not a directory). Caught by the walker."""


def split(path: str) -> list[str]:
    """Path components; `..` is kept (resolution handles it), empty and `.` parts are dropped."""
    return [p for p in path.split("/") if p and p != "."]


def join(parts: list[str]) -> str:
    return "/" + "/".join(parts)


class Tree:
    def __init__(self, max_symlink_depth: int = 40) -> None:
        self.root = Dir(-1)
        self.max_symlink_depth = max_symlink_depth
        # Indexes kept in step with the tree so detectors' views need no walk of the whole tree.
        self.files: dict[str, File] = {}
        self.links: dict[str, Link] = {}
        # Paths added or removed since the last call to take_touched(), for dirty-detector tracking.
        self._touched: set[str] = set()

    # -- resolution ---------------------------------------------------------------------------------
    def _walk(self, parts: list[str], *, create_layer: int | None) -> tuple[list[str], list[Dir]]:
        """Resolve every component of `parts` as directories, following links (clamped to the root).

        Returns the real path and the chain of Dir nodes (root first). Missing directories are
        created with layer `create_layer` when given, else PathError.
        """
        real: list[str] = []
        chain: list[Dir] = [self.root]
        stack = list(reversed(parts))
        hops = 0
        while stack:
            name = stack.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if real:
                    real.pop()
                    chain.pop()
                continue
            here = chain[-1]
            child = here.children.get(name)
            if isinstance(child, Link):
                hops += 1
                if hops > self.max_symlink_depth:
                    raise PathError(f"too many levels of symbolic links (> {self.max_symlink_depth})")
                if child.target.startswith("/"):
                    real, chain = [], [self.root]
                stack.extend(reversed(child.target.split("/")))
                continue
            if child is None:
                if create_layer is None:
                    raise PathError(f"no such directory: {join([*real, name])}")
                child = Dir(create_layer)
                here.children[name] = child
            if not isinstance(child, Dir):
                raise PathError(f"not a directory: {join([*real, name])}")
            real.append(name)
            chain.append(child)
        return real, chain

    def resolve(self, path: str) -> str | None:
        """The real path `path` names with every link followed, or None if it does not resolve."""
        parts = split(path)
        try:
            for _ in range(self.max_symlink_depth + 1):
                if not parts:
                    return "/"
                if parts[-1] == "..":
                    real, _ = self._walk(parts, create_layer=None)
                    return join(real)
                real, chain = self._walk(parts[:-1], create_layer=None)
                node = chain[-1].children.get(parts[-1])
                if isinstance(node, Link):
                    base = [] if node.target.startswith("/") else real
                    parts = [*base, *split(node.target)]
                    continue
                return join([*real, parts[-1]]) if node is not None else None
        except PathError:
            return None
        return None

    def lookup(self, path: str) -> Node | None:
        """The node at `path` without following a final link (parents are followed)."""
        parts = split(path)
        if not parts:
            return self.root
        try:
            _, chain = self._walk(parts[:-1], create_layer=None)
        except PathError:
            return None
        return chain[-1].children.get(parts[-1])

    def read(self, path: str) -> Content | None:
        real = self.resolve(path)
        node = self.files.get(real) if real else None
        return node.content if node else None

    # -- mutation -----------------------------------------------------------------------------------
    def parent_for_write(self, parts: list[str], layer: int) -> tuple[list[str], Dir]:
        """Resolve (and create) the parent directory of `parts`; returns its real path and node."""
        real, chain = self._walk(parts[:-1], create_layer=layer)
        return real, chain[-1]

    def put(self, parts: list[str], node: Node | None, layer: int) -> str:
        """Place `node` at `parts`, resolving (and creating) parents; see `place`."""
        real_parent, parent = self.parent_for_write(parts, layer)
        return self.place(real_parent, parent, parts[-1], node, layer)

    def place(self, real_parent: list[str], parent: Dir, name: str, node: Node | None, layer: int) -> str:
        """Place `node` as `name` in `parent`; None stands for a file nobody asked for, which still
        replaces what was there. A directory placed on a directory, or on a link to a directory,
        keeps what is there (tar and claircore semantics); anything else replaces it."""
        path = join([*real_parent, name])
        existing = parent.children.get(name)
        if isinstance(node, Dir):
            if isinstance(existing, Dir):
                existing.layer = layer
                return path
            if isinstance(existing, Link):
                target = self.resolve(path)
                if target is not None and isinstance(self.lookup(target), Dir):
                    return target
        if existing is not None:
            del parent.children[name]
            self._drop(path, existing)
        if node is not None:
            parent.children[name] = node
            self._index(path, node)
        return path

    def remove(self, parts: list[str], below_layer: int) -> None:
        """Whiteout: remove `parts` if a lower layer made it (same-layer entries win)."""
        try:
            real_parent, chain = self._walk(parts[:-1], create_layer=None)
        except PathError:
            return
        parent = chain[-1]
        node = parent.children.get(parts[-1])
        if node is not None and node.layer < below_layer:
            del parent.children[parts[-1]]
            self._drop(join([*real_parent, parts[-1]]), node)

    def make_opaque(self, parts: list[str], below_layer: int) -> None:
        """Opaque whiteout: drop everything lower layers put under the directory."""
        try:
            real, chain = self._walk(parts, create_layer=None)
        except PathError:
            return
        self._prune(real, chain[-1], below_layer)

    def _prune(self, real: list[str], directory: Dir, below_layer: int) -> None:
        for name, child in list(directory.children.items()):
            if child.layer < below_layer:
                del directory.children[name]
                self._drop(join([*real, name]), child)
            elif isinstance(child, Dir):
                self._prune([*real, name], child, below_layer)

    def _index(self, path: str, node: Node) -> None:
        if isinstance(node, File):
            self.files[path] = node
            self._touched.add(path)
        elif isinstance(node, Link):
            self.links[path] = node
            self._touched.add(path)

    def _drop(self, path: str, node: Node) -> None:
        # Cost is the size of the removed subtree, which was paid for when it was built.
        for sub_path, sub in _walk_subtree(path, node):
            if isinstance(sub, File):
                self.files.pop(sub_path, None)
                self._touched.add(sub_path)
            elif isinstance(sub, Link):
                self.links.pop(sub_path, None)
                self._touched.add(sub_path)

    def take_touched(self) -> set[str]:
        touched, self._touched = self._touched, set()
        return touched


def _walk_subtree(path: str, node: Node) -> Iterator[tuple[str, Node]]:
    stack: list[tuple[str, Node]] = [(path, node)]
    while stack:
        here, current = stack.pop()
        yield here, current
        if isinstance(current, Dir):
            stack.extend((f"{here}/{name}", child) for name, child in current.children.items())
