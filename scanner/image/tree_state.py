"""The squashed tree as plain data, and back: how a replay's state after some layers crosses a process
boundary (the layer-prefix cache, `scanner.inventory.prefix_state`).

A tree is a list of nodes in walk order, each `[parent, name, kind, layer, extra]`: `parent` numbers a
directory met earlier (0 is the root), `kind` is `d`, `l` (extra: the target) or `f` (extra: the number of
its content in a table the caller keeps, so hard links share their content again). Only what the tree
holds is written: directories, links and captured files, each with the layer that last wrote it, which is
what later whiteouts and opaque markers compare against. Loading checks every node: the data may come
from a sandboxed child.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from scanner.image.tree import Content, Dir, File, Link, Node, Tree, join


class StateError(ValueError):
    """A state document that is not what `dump_tree` (or the prefix state) writes; names where."""


def dump_tree(tree: Tree, content_number: Callable[[Content], int]) -> dict[str, Any]:
    nodes: list[list[Any]] = []
    dirs = 1
    stack: list[tuple[int, Dir]] = [(0, tree.root)]
    while stack:
        number, directory = stack.pop()
        for name, child in directory.children.items():
            if isinstance(child, Dir):
                nodes.append([number, name, "d", child.layer, 0])
                stack.append((dirs, child))
                dirs += 1
            elif isinstance(child, Link):
                nodes.append([number, name, "l", child.layer, child.target])
            elif isinstance(child, File):
                nodes.append([number, name, "f", child.layer, content_number(child.content)])
    return {"root": tree.root.layer, "nodes": nodes}


def load_tree(doc: Any, contents: Sequence[Content], max_symlink_depth: int) -> Tree:
    """The tree `dump_tree` wrote, its file and link indexes rebuilt; StateError on any defect."""
    if not isinstance(doc, dict) or set(doc) != {"root", "nodes"}:
        raise StateError("tree: must be an object with root and nodes")
    tree = Tree(max_symlink_depth)
    tree.root.layer = _layer(doc["root"], "tree.root")
    dirs: list[tuple[str, Dir]] = [("", tree.root)]
    nodes = doc["nodes"]
    if not isinstance(nodes, list):
        raise StateError("tree.nodes: must be a list")
    for i, entry in enumerate(nodes):
        where = f"tree.nodes[{i}]"
        if not isinstance(entry, list) or len(entry) != 5:
            raise StateError(f"{where}: must be [parent, name, kind, layer, extra]")
        parent, name, kind, layer, extra = entry
        if not isinstance(parent, int) or isinstance(parent, bool) or not 0 <= parent < len(dirs):
            raise StateError(f"{where}: parent is not a directory listed before it")
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
            raise StateError(f"{where}: not a valid name")
        base, directory = dirs[parent]
        if name in directory.children:
            raise StateError(f"{where}: {name!r} listed twice")
        path = f"{base}/{name}"
        node: Node
        if kind == "d":
            node = Dir(_layer(layer, where))
            dirs.append((path, node))
        elif kind == "l":
            if not isinstance(extra, str) or not extra or "\0" in extra:
                raise StateError(f"{where}: link target must be a non-empty string")
            node = Link(_layer(layer, where), extra)
            tree.links[path] = node
        elif kind == "f":
            if not isinstance(extra, int) or isinstance(extra, bool) or not 0 <= extra < len(contents):
                raise StateError(f"{where}: content number out of range")
            node = File(_layer(layer, where), contents[extra])
            tree.files[path] = node
        else:
            raise StateError(f"{where}: kind must be d, l or f")
        directory.children[name] = node
    return tree


def tree_paths(tree: Tree) -> list[str]:
    """Every path in the tree, for tests comparing two trees."""
    out: list[str] = []
    stack: list[tuple[list[str], Dir]] = [([], tree.root)]
    while stack:
        parts, directory = stack.pop()
        for name, child in directory.children.items():
            out.append(join([*parts, name]))
            if isinstance(child, Dir):
                stack.append(([*parts, name], child))
    return sorted(out)


def _layer(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not -1 <= value < 1 << 31:
        raise StateError(f"{where}: layer must be a whole number")
    return value
