"""Safe YAML loading that remembers where every value came from.

`memalert check` reports each problem as FILE:LINE:COL, so the loader keeps the
position of every node by JSON path (`("rules", 3, "above", "warning")`).

We read YAML events and build the data ourselves instead of calling
`yaml.compose`: libyaml's composer recurses in C and crashes the interpreter on
deeply nested input (100,000 `[`), and the pure-Python composer hits
RecursionError. Walking the event stream lets us stop at a nesting bound
before the parser does any quadratic work, refuse alias bombs by counting the
nodes that aliases expand to, and report duplicate keys, which YAML would
silently let the last one win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from memalert.engine.core.errors import Diagnostic, RuleFileError
from memalert.engine.core.model import Position

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

MAX_BYTES = 10_000_000
MAX_NESTING = 100
MAX_ALIAS_NODES = 100_000

# libyaml is ~10x faster; the pure-Python loader keeps us working without it.
_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()
_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG + "merge"


def _text(value: str) -> str:
    return value


def _via_constructor(method: Callable[[ScalarNode], object]) -> Callable[[str], object]:
    return lambda value: method(ScalarNode(_TAG + "str", value))


_SCALAR_BUILDERS: dict[str, Callable[[str], object]] = {
    _TAG + "str": _text,
    _TAG + "int": _via_constructor(_CONSTRUCTOR.construct_yaml_int),
    _TAG + "float": _via_constructor(_CONSTRUCTOR.construct_yaml_float),
    _TAG + "bool": _via_constructor(_CONSTRUCTOR.construct_yaml_bool),
    _TAG + "null": lambda value: None,
    # Kept as text: rule files parse RFC 3339 themselves, with a clear error.
    _TAG + "timestamp": _text,
    _TAG + "value": _text,
    _MERGE_TAG: _text,
}

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Document:
    """Plain data (dict/list/str/int/float/bool/None) plus the position of each node."""

    file: str
    data: Any
    text: str
    value_marks: dict[JsonPath, tuple[int, int]] = field(repr=False)
    key_marks: dict[JsonPath, tuple[int, int]] = field(repr=False)

    def position(self, path: Sequence[str | int], *, key: bool = False) -> Position:
        """Where the node at `path` starts; with `key=True`, where its mapping key starts.

        A path that does not exist (a missing required key, say) falls back to
        its nearest existing parent.
        """
        at = tuple(path)
        if key and at in self.key_marks:
            line, col = self.key_marks[at]
            return Position(file=self.file, line=line, col=col)
        while at and at not in self.value_marks:
            at = at[:-1]
        line, col = self.value_marks.get(at, (1, 1))
        return Position(file=self.file, line=line, col=col)


class _RefusedError(Exception):
    """Stops loading at the first problem after which nothing sensible can follow."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.col = col
        self.message = message


def load_yaml(path: str | Path, *, max_bytes: int = MAX_BYTES) -> Document:
    """Read and parse one YAML file; raise RuleFileError naming what is wrong and where."""
    file = str(path)
    raw = _read_bounded(Path(path), file, max_bytes)
    if b"\x00" in raw:
        offset = raw.index(b"\x00")
        line = raw.count(b"\n", 0, offset) + 1
        raise _error(
            file, line, 1, f"binary file (NUL byte at byte offset {offset}): expected YAML text"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start]
        raise _error(
            file,
            line,
            col,
            f"not UTF-8 text: invalid byte 0x{bad:02x} at byte offset {exc.start}"
            "; save the file as UTF-8",
        ) from None
    return parse_yaml(text.removeprefix("\ufeff"), file)


def _read_bounded(path: Path, file: str, max_bytes: int) -> bytes:
    try:
        if not path.is_file():
            what = "a directory" if path.is_dir() else "not a regular file"
            if not path.exists():
                what = "no such file"
            raise _error(file, 1, 1, f"cannot read: {what}")
        size = path.stat().st_size
        limit = f"the limit is {max_bytes:,} bytes"
        if size > max_bytes:
            raise _error(file, 1, 1, f"file too large ({size:,} bytes; {limit})")
        with path.open("rb") as stream:
            # Read one byte past the limit: a file may grow between stat and read.
            raw = stream.read(max_bytes + 1)
    except OSError as exc:
        raise _error(file, 1, 1, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise _error(file, 1, 1, f"file too large (more than {max_bytes:,} bytes)")
    return raw


def parse_yaml(text: str, file: str) -> Document:
    """Parse YAML text (one document) into a Document; raise RuleFileError when it is unusable."""
    try:
        root = _Composer().compose(text)
    except _RefusedError as exc:
        raise _error(file, exc.line, exc.col, exc.message) from None
    except yaml.MarkedYAMLError as exc:
        line, col = _mark(exc.problem_mark or exc.context_mark)
        what = exc.problem or exc.context or "malformed YAML"
        context = f" ({exc.context})" if exc.problem and exc.context else ""
        raise _error(file, line, col, f"invalid YAML: {what}{context}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise _error(file, line, col, f"invalid YAML: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise _error(file, 1, 1, f"invalid YAML: {exc}") from None
    if root is None or (root.kind == "scalar" and root.tag == _TAG + "null" and not root.value):
        raise _error(file, 1, 1, "the file is empty")
    builder = _Builder()
    try:
        data = builder.build(root, (), 0)
    except _RefusedError as exc:
        raise _error(file, exc.line, exc.col, exc.message) from None
    if builder.problems:
        raise RuleFileError(
            [Diagnostic(file=file, line=ln, col=c, message=m) for ln, c, m in builder.problems]
        )
    return Document(
        file=file, data=data, text=text, value_marks=builder.values, key_marks=builder.keys
    )


def _error(file: str, line: int, col: int, message: str) -> RuleFileError:
    return RuleFileError([Diagnostic(file=file, line=line, col=col, message=message)])


def _mark(mark: Any) -> tuple[int, int]:
    if mark is None:
        return 1, 1
    return mark.line + 1, mark.column + 1


@dataclass(slots=True, eq=False)
class _Node:
    """A composed YAML node; mapping `items` alternate key, value, key, value."""

    kind: str  # "scalar" | "seq" | "map" | "alias" (whose one item is the anchored node)
    tag: str
    line: int
    col: int
    value: str = ""
    items: list[_Node] = field(default_factory=list)


class _Composer:
    """Builds the node graph from parser events, iteratively and with bounded nesting."""

    def __init__(self) -> None:
        self.root: _Node | None = None
        self._stack: list[tuple[_Node, str | None]] = []
        self._anchors: dict[str, _Node] = {}
        self._open_anchors: set[str] = set()
        self._documents = 0

    def compose(self, text: str) -> _Node | None:
        for event in yaml.parse(text, Loader=_Loader):
            line, col = _mark(event.start_mark)
            if isinstance(event, yaml.DocumentStartEvent):
                self._document(line, col)
            elif isinstance(event, yaml.ScalarEvent):
                self._scalar(event, line, col)
            elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                self._open(event, line, col)
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                node, anchor = self._stack.pop()
                self._define(anchor, node)
                self._attach(node)
            elif isinstance(event, yaml.AliasEvent):
                self._alias(str(event.anchor), line, col)
        return self.root

    def _document(self, line: int, col: int) -> None:
        self._documents += 1
        if self._documents > 1:
            raise _RefusedError(
                line, col, "more than one YAML document in this file ('---'); use one file each"
            )

    def _scalar(self, event: yaml.ScalarEvent, line: int, col: int) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _resolve_scalar_tag(event.value, event.implicit)
        node = _Node(kind="scalar", tag=tag, line=line, col=col, value=event.value)
        self._define(event.anchor, node)
        self._attach(node)

    def _open(self, event: yaml.CollectionStartEvent, line: int, col: int) -> None:
        if len(self._stack) >= MAX_NESTING:
            raise _RefusedError(line, col, f"nesting deeper than {MAX_NESTING} levels")
        kind = "seq" if isinstance(event, yaml.SequenceStartEvent) else "map"
        tag = event.tag if event.tag not in (None, "!") else _TAG + kind
        if event.anchor is not None:
            self._open_anchors.add(event.anchor)
        self._stack.append((_Node(kind=kind, tag=str(tag), line=line, col=col), event.anchor))

    def _alias(self, name: str, line: int, col: int) -> None:
        if name in self._open_anchors:
            raise _RefusedError(
                line, col, f"recursive alias *{name} refers to a node that contains it"
            )
        if name not in self._anchors:
            raise _RefusedError(
                line, col, f"alias *{name} refers to no anchor &{name} defined before it"
            )
        alias = _Node(kind="alias", tag="", line=line, col=col, items=[self._anchors[name]])
        self._attach(alias)

    def _define(self, anchor: str | None, node: _Node) -> None:
        if anchor is not None:
            self._open_anchors.discard(anchor)
            self._anchors[anchor] = node

    def _attach(self, node: _Node) -> None:
        if self._stack:
            self._stack[-1][0].items.append(node)
        else:
            self.root = node


def _resolve_scalar_tag(value: str, implicit: tuple[bool, bool]) -> str:
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call]
    return tag


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _dealias(node: _Node) -> _Node:
    return node.items[0] if node.kind == "alias" else node


class _Builder:
    """Turns nodes into plain data, recording marks and counting alias expansion."""

    def __init__(self) -> None:
        self.values: dict[JsonPath, tuple[int, int]] = {}
        self.keys: dict[JsonPath, tuple[int, int]] = {}
        self.problems: list[tuple[int, int, str]] = []
        self._alias_site: tuple[int, int] | None = None
        self._expanded = 0

    def build(self, node: _Node, path: JsonPath, depth: int) -> Any:
        if node.kind == "alias":
            return self._expand(node, path, depth)
        if self._alias_site is not None:
            self._expanded += 1
            if self._expanded > MAX_ALIAS_NODES:
                line, col = self._alias_site
                limit = f"{MAX_ALIAS_NODES:,}"
                raise _RefusedError(
                    line, col, f"aliases expand to more than {limit} nodes (an alias bomb?)"
                )
        if depth > MAX_NESTING:
            raise _RefusedError(
                node.line, node.col, f"nesting deeper than {MAX_NESTING} levels (with aliases)"
            )
        value: Any
        if node.kind == "scalar":
            value = self._scalar(node)
        elif node.kind == "seq":
            self._require_plain_tag(node)
            value = [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.items)]
        else:
            self._require_plain_tag(node)
            value = self._mapping(node, path, depth)
        self.values[path] = (node.line, node.col)
        return value

    def _expand(self, alias: _Node, path: JsonPath, depth: int) -> Any:
        # Every node built under an alias counts: that is what an alias bomb
        # multiplies. The outermost alias is where the user can fix it.
        outermost = self._alias_site is None
        if outermost:
            self._alias_site = (alias.line, alias.col)
        try:
            return self.build(alias.items[0], path, depth)
        finally:
            if outermost:
                self._alias_site = None

    def _scalar(self, node: _Node) -> Any:
        construct = _SCALAR_BUILDERS.get(node.tag)
        if construct is None:
            self._problem(node, f"unsupported YAML tag {_show_tag(node.tag)}")
            return node.value
        try:
            return construct(node.value)
        except (ValueError, yaml.YAMLError):
            self._problem(node, f"cannot read {node.value!r} as {_show_tag(node.tag)}")
            return node.value

    def _require_plain_tag(self, node: _Node) -> None:
        if node.tag != _TAG + node.kind:
            self._problem(node, f"unsupported YAML tag {_show_tag(node.tag)}")

    def _mapping(self, node: _Node, path: JsonPath, depth: int) -> dict[str, Any]:
        # Merged (`<<: *base`) entries are built first so that explicit keys
        # override them, positions included.
        merged: dict[str, Any] = {}
        explicit: list[tuple[_Node, _Node]] = []
        for key_node, value_node in zip(node.items[0::2], node.items[1::2], strict=True):
            if key_node.tag == _MERGE_TAG:
                for source in self._merge_sources(value_node):
                    part = self.build(source, path, depth)
                    merged.update({k: v for k, v in part.items() if k not in merged})
            else:
                explicit.append((key_node, value_node))
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for alias_or_key, value_node in explicit:
            key_node = _dealias(alias_or_key)
            if key_node.kind != "scalar":
                self._problem(key_node, "mapping keys must be plain text, not a list or mapping")
                continue
            key = key_node.value
            if key in first_line:
                self._problem(key_node, f"duplicate key {key!r} (first on line {first_line[key]})")
                continue
            first_line[key] = key_node.line
            self.keys[(*path, key)] = (key_node.line, key_node.col)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return {**{k: v for k, v in merged.items() if k not in result}, **result}

    def _merge_sources(self, value: _Node) -> list[_Node]:
        target = _dealias(value)
        sources = target.items if target.kind == "seq" else [value]
        good = [s for s in sources if _dealias(s).kind == "map"]
        if len(good) != len(sources):
            self._problem(value, "a merge key '<<' needs a mapping or a list of mappings")
        return good

    def _problem(self, node: _Node, message: str) -> None:
        self.problems.append((node.line, node.col, message))
