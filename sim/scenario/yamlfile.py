"""The one YAML loader for files a user gives: scenarios, profiles, measurement tables.

`yaml.safe_load` is safe against code execution but not against careless or hostile files:
a repeated key silently wins (the same silent typo unknown keys are refused for), an alias
bomb ("billion laughs") builds a value that costs hours to validate or print, deep nesting
ends in `RecursionError`, and YAML 1.2 numbers such as `1e3` load as strings. The loader here
refuses each with an `InputError` naming `file:line`, and bounds what a document may cost:

* a key given twice in one mapping is an error (keys merged in with `<<:` may be overridden);
* at most `MAX_DEPTH` levels of nested lists and mappings;
* at most `MAX_NODES` values in a document, and at most `MAX_ALIAS_NODES` of them repeated
  through aliases (each alias counts every value of what it repeats); no recursive aliases;
* YAML 1.2 floats (`1e3`, `-2.5E-4`, `-.5`) load as numbers, like the YAML 1.1 ones;
* files are read up to `MAX_FILE_BYTES`; a larger one is refused before it is parsed.

Scanning and parsing run in libyaml (`yaml._yaml.CParser`, `yaml.CSafeLoader`'s parser) when
PyYAML was built with it, and in the pure-Python parser otherwise. The document is composed
in Python either way: composition is where nesting and aliases are counted, and it costs
little next to parsing and construction.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from sim.errors import InputError

BYTES_PER_MIB = 1024**2
MAX_FILE_BYTES = 16 * BYTES_PER_MIB  # far above any scenario (the bundled ones: a few KiB)
MAX_DEPTH = 64  # nested lists and mappings; a scenario needs about six
MAX_NODES = 1_000_000  # values in one document, aliases expanded: ~0.5 GiB while loading
MAX_ALIAS_NODES = 100_000  # of those, repeated through aliases (a shared block is dozens)

# YAML 1.2 (core schema) floats that YAML 1.1's resolver leaves as strings: an exponent
# without a dot or without a sign (1e3, 2.5E-4, 1.e5) and a signed leading dot (-.5).
_YAML12_FLOAT = re.compile(r"""^[-+]?(?:
      [0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+
    | \.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    )$""", re.VERBOSE)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Resolver(Resolver):
    """YAML 1.1's implicit types plus YAML 1.2's float forms (tried after the 1.1 ones, so an
    integer stays an integer and a date a date)."""


_Resolver.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT,
                                list("-+0123456789."))


class _Constructor(SafeConstructor):
    """Safe construction, with an impossible date or an integer of more digits than Python
    converts (`sys.get_int_max_str_digits`) reported at its line like any other malformed
    value: PyYAML lets their ValueError escape."""

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise ConstructorError(None, None, f"not a date: {node.value[:40]!r} ({exc})",
                                   node.start_mark) from None

    def construct_yaml_int(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            raise ConstructorError(None, None, f"an integer of {len(node.value):,} "
                                   "characters", node.start_mark) from None


_Constructor.add_constructor("tag:yaml.org,2002:timestamp",  # type: ignore[type-var]
                             _Constructor.construct_yaml_timestamp)
_Constructor.add_constructor("tag:yaml.org,2002:int",  # type: ignore[type-var]
                             _Constructor.construct_yaml_int)


class _Composer(Composer):
    """Composition that counts: nesting depth, values, values repeated through aliases, and
    refuses a key given twice in a mapping. `where` names the file in every error."""

    where: str
    peek_event: Callable[[], Any]  # the parser's (libyaml's or the pure-Python one)

    def _start_counting(self, where: str) -> None:
        self.where = where
        self.depth = 0
        self.nodes = 0  # composed, each alias counted as the values it repeats
        self.alias_nodes = 0
        self.sizes: dict[Node, int] = {}  # anchored node → values in it, aliases expanded

    def _error(self, line: int, value: Any, expected: str) -> InputError:
        return InputError(f"{self.where}:{line}", value, expected)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)  # an undefined alias raises there
            size = self.sizes.get(node) if node is not None else None
            if size is None:
                raise self._error(line, f"*{event.anchor}", "an alias to a finished node "
                                  "(not one inside the node it repeats)")
            self.alias_nodes += size
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise self._error(line, f"*{event.anchor}", f"aliases that repeat at most "
                                  f"{MAX_ALIAS_NODES:,} values in all (by here they repeat "
                                  f"{self.alias_nodes:,})")
            self._count(size, line)
            return node
        collection = isinstance(event, SequenceStartEvent | MappingStartEvent)
        if collection:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self._error(line, f"more than {MAX_DEPTH} levels",
                                  f"lists and mappings nested at most {MAX_DEPTH} deep")
        before = self.nodes
        self._count(1, line)
        node = super().compose_node(parent, index)
        if collection:
            self.depth -= 1
        if event.anchor is not None and node is not None:
            self.sizes[node] = self.nodes - before
        return node

    def _count(self, size: int, line: int) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise self._error(line, f"more than {MAX_NODES:,} values",
                              f"a document of at most {MAX_NODES:,} values (scalars, lists "
                              "and mappings, aliases counted as what they repeat)")


class _LoaderMixin(_Composer, _Constructor, _Resolver):
    """The composer, constructor and resolver every loader here shares; a parser is added."""

    dispose: Callable[[], None]  # the parser's: drops its state

    def __init__(self, stream: str, where: str = "<string>") -> None:
        raise NotImplementedError  # a loader with a parser: PythonLoader or CLoader

    def _init_rest(self, where: str) -> None:
        Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)
        self._start_counting(where)

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self._scalar_key(key_node)
            if key is None:
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                raise self._error(line, key[1], f"a key given once (also at line {seen[key]})")
            seen[key] = line
        return node

    def _scalar_key(self, key_node: Node) -> tuple[type, Any] | None:
        """A scalar key as it will be constructed (so `1` and `0x1` are the same key, `1` and
        `'1'` are not), or None for keys compared no further: merges, lists, mappings."""
        if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
            return None
        construct = self.yaml_constructors.get(key_node.tag)
        try:
            value = key_node.value if construct is None else construct(self, key_node)
            hash(value)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            return None  # construction reports it where it belongs
        return (type(value), value)


class PythonLoader(_LoaderMixin, Reader, Scanner, Parser):
    """The pure-Python parser, for a PyYAML built without libyaml."""

    def __init__(self, stream: str, where: str = "<string>") -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        self._init_rest(where)


_CParser: Any
try:
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None
if _CParser is not None:

    class CLoader(_LoaderMixin, _CParser):
        """libyaml's scanner and parser (`yaml.CSafeLoader`'s), composed and built here."""

        def __init__(self, stream: str, where: str = "<string>") -> None:
            _CParser.__init__(self, stream)
            self._init_rest(where)

    LOADERS: dict[str, type[_LoaderMixin]] = {"c": CLoader, "python": PythonLoader}
else:  # pragma: no cover - PyYAML without libyaml
    LOADERS = {"python": PythonLoader}
DEFAULT_LOADER: type[_LoaderMixin] = LOADERS.get("c", PythonLoader)


def loads(text: str, where: str, expected: str = "valid YAML",
          loader: type[_LoaderMixin] | None = None) -> Any:
    """The one document in `text` (from the file `where`); `InputError` naming `where:line`
    on a syntax error (accepted: `expected`), a repeated key, or a document over the bounds."""
    chosen = loader or DEFAULT_LOADER
    try:
        return _load(chosen, text, where)
    except yaml.YAMLError as exc:
        error = exc
    if chosen is not PythonLoader:
        # libyaml words its errors its own way; the pure-Python parser, stopping at the same
        # place, says what PyYAML always said (`found character '\t' that cannot start any
        # token`). Only a broken file pays for the second parse.
        try:
            _load(PythonLoader, text, where)
        except yaml.YAMLError as exc:
            error = exc
    mark = getattr(error, "problem_mark", None)
    at = f"{where}:{mark.line + 1}" if mark else where
    # A reader error (a control character) has a reason and no mark.
    problem = getattr(error, "problem", None) or getattr(error, "reason", None) or "unparseable"
    raise InputError(at, problem, expected) from None


def _load(loader: type[_LoaderMixin], text: str, where: str) -> Any:
    instance = loader(text, where)  # the pure-Python reader checks the characters here
    try:
        return instance.get_single_data()
    finally:
        instance.dispose()


def read_text(path: Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file's UTF-8 text, read no further than `max_bytes` (a device such as /dev/zero
    or a huge file is refused, not read whole); `InputError` naming `what` when larger.
    OSError and UnicodeDecodeError are left to the caller, whose messages differ."""
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            size = os.fstat(handle.fileno()).st_size
            shown = (f"{size / BYTES_PER_MIB:.1f} MiB" if size > max_bytes
                     else f"more than {max_bytes / BYTES_PER_MIB:g} MiB")
            raise InputError(str(path), shown,
                             f"{what} of at most {max_bytes / BYTES_PER_MIB:g} MiB")
    return data.decode("utf-8")
