"""A small, strict YAML parser for kubeconfig files, so the runtime needs no PyYAML.

kubeconfig files are YAML (sometimes JSON) written by kubectl, cloud CLIs and people. This
parser reads the subset those writers produce: one document (optional ``%YAML`` directive,
``---`` and ``...``), block mappings and sequences (including indentless and compact
``- key: value`` forms), plain, single- and double-quoted scalars over several lines, literal
``|`` and folded ``>`` block scalars with chomping and indentation indicators, flow ``[...]``
and ``{...}`` collections, comments, and the standard ``!!str``/``!!int``/... scalar tags.
Plain scalars are typed as PyYAML's SafeLoader types them (see
:mod:`vk_trio.kube.kubeconfig_scalars`).

What it refuses, with :class:`~vk_trio.errors.ConfigError` naming the file and line: anchors
and aliases, other tags, complex ``?`` keys, merge keys, duplicate keys, several documents, tabs
used as indentation, and control characters. Anything else it cannot parse is an error too;
it never guesses. JSON files go to :func:`json.loads` first.
"""

from __future__ import annotations

import json
from typing import Any

from vk_trio.kube.kubeconfig_scalars import construct_tagged, resolve_plain
from vk_trio.kube.kubeconfig_scan import BLANK, BREAK, RawScalar, Scanner

__all__ = ["parse_kubeconfig_text"]


def parse_kubeconfig_text(text: str, *, source: str) -> Any:
    """Parse one kubeconfig document (YAML or JSON); ``source`` names the file in errors."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
        except (ValueError, RecursionError):
            pass  # YAML flow style also starts with "{"; let the YAML parser judge it.
    return _Parser(text, source=source).parse_document()


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


class _Parser(Scanner):
    """Recursive descent over the document structure; scalars come from :class:`Scanner`."""

    # ---------------------------------------------------------------- document

    def parse_document(self) -> Any:
        self.skip_blank_lines()
        explicit = self.skip_directives()
        if self.at_doc_marker() and self.text.startswith("---", self.pos):
            self.pos += 3
            explicit = True
        elif explicit:
            raise self.error("expected '---' after a directive")
        value = self.parse_root(explicit=explicit)
        self.skip_blank_lines()
        while self.at_doc_marker() and self.text.startswith("...", self.pos):
            self.pos += 3
            self.expect_line_end()
            self.skip_blank_lines()
        if not self.at_eof():
            if self.at_doc_marker():
                raise self.error("a kubeconfig holds one YAML document, found another")
            raise self.error(f"unexpected {self.ch()!r}")
        return value

    def skip_directives(self) -> bool:
        seen = False
        while self.ch() == "%" and self.col() == 0:
            line_end = (
                self.text.index("\n", self.pos) if "\n" in self.text[self.pos :] else self.end
            )
            directive = self.text[self.pos : line_end].split("#")[0].split()
            if directive[0] != "%YAML" or len(directive) != 2 or not directive[1].startswith("1."):
                raise self.error(f"unsupported directive {directive[0]}")
            self.pos = line_end
            self.skip_blank_lines()
            seen = True
        return seen

    def parse_root(self, *, explicit: bool) -> Any:
        if explicit:
            self.skip_spaces()
            if not self.at_line_end():
                return self.parse_node_here(parent=-1, inline=True)
        self.skip_blank_lines()
        if self.at_eof() or self.at_doc_marker():
            return None
        return self.parse_node_here(parent=-1, inline=False)

    # ---------------------------------------------------------------- block nodes

    def parse_node_here(self, *, parent: int, inline: bool) -> Any:
        """Parse the node at ``pos``; ``inline`` means it follows ``key:`` on the same line."""
        with self.nested():
            return self.parse_tagged(parent=parent, inline=inline)

    def parse_tagged(self, *, parent: int, inline: bool) -> Any:
        tag = None
        if self.ch() == "!":
            tag = self.parse_tag()
            self.skip_spaces()
            if self.at_line_end():
                self.skip_blank_lines()
                if self.at_eof() or self.at_doc_marker() or self.col() <= parent:
                    return self.apply_tag(tag, None)
                inline = False
        if self.ch() in "&*":
            raise self.error("anchors and aliases are not supported in a kubeconfig")
        if self.ch() == "?" and self.ch(1) in BLANK:
            raise self.error("complex mapping keys ('?') are not supported")
        return self.apply_tag(tag, self.parse_untagged(parent=parent, inline=inline))

    def parse_untagged(self, *, parent: int, inline: bool) -> Any:
        if self.ch() == "-" and self.ch(1) in BLANK:
            if inline:
                raise self.error("a block sequence cannot start on the line of its key")
            return self.parse_block_sequence(self.col())
        if self.ch() in "|>":
            return self.parse_block_scalar(parent)
        if not inline:
            start = self.pos
            key = self.try_mapping_key()
            if key is not None:
                self.pos = start
                return self.parse_block_mapping(self.col())
        value = self.parse_flow_node(parent=parent, flow=False)
        self.expect_line_end()
        return value

    def apply_tag(self, tag: str | None, node: Any) -> Any:
        if isinstance(node, RawScalar):
            try:
                if tag is not None:
                    return construct_tagged(node.text, tag=tag)
                return resolve_plain(node.text) if node.plain else node.text
            except ValueError as exc:
                raise self.error(str(exc)) from None
        if tag is None or (tag == "map" and isinstance(node, dict)):
            return node
        if tag == "seq" and isinstance(node, list):
            return node
        if node is None:
            return self.apply_tag(tag, RawScalar("", plain=False))
        raise self.error(f"tag !!{tag} does not fit this node")

    def parse_tag(self) -> str:
        start = self.pos
        while self.ch() not in BLANK:
            self.pos += 1
        tag = self.text[start : self.pos]
        if not tag.startswith("!!") or len(tag) == 2:
            raise self.error(f"unsupported tag {tag}", start)
        return tag[2:]

    def try_mapping_key(self) -> RawScalar | None:
        """If a ``key:`` starts at ``pos``, consume it and the colon; else return None."""
        start = self.pos
        line_end = self.text.find("\n", start)
        if self.ch() in "'\"":
            key = self.parse_quoted()
        elif self.starts_plain(flow=False):
            key = self.parse_plain(parent=-1, flow=False, multiline=False)
        else:
            return None
        self.skip_spaces()
        if self.ch() == ":" and self.ch(1) in BLANK and (line_end < 0 or self.pos < line_end):
            self.pos += 1
            return key
        self.pos = start
        return None

    def parse_block_mapping(self, indent: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        while True:
            key_pos = self.pos
            raw_key = self.try_mapping_key()
            if raw_key is None:
                raise self.error("expected a 'key: value' line")
            key = self.apply_tag(None, raw_key)
            if key in result:
                raise self.error(f"duplicate key {key!r}", key_pos)
            result[key] = self.parse_mapping_value(indent)
            self.skip_blank_lines()
            if self.at_eof() or self.at_doc_marker() or self.col() < indent:
                return result
            if self.col() > indent:
                raise self.error("unexpected indentation")

    def parse_mapping_value(self, indent: int) -> Any:
        self.skip_spaces()
        if not self.at_line_end():
            return self.parse_node_here(parent=indent, inline=True)
        self.skip_blank_lines()
        if self.at_eof() or self.at_doc_marker():
            return None
        if self.col() > indent:
            return self.parse_node_here(parent=indent, inline=False)
        if self.col() == indent and self.ch() == "-" and self.ch(1) in BLANK:
            return self.parse_block_sequence(indent)
        return None

    def parse_block_sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while self.ch() == "-" and self.ch(1) in BLANK and self.col() == indent:
            self.pos += 1
            self.skip_spaces()
            if self.at_line_end():
                self.skip_blank_lines()
                if self.at_eof() or self.at_doc_marker() or self.col() <= indent:
                    items.append(None)
                    continue
            items.append(self.parse_node_here(parent=indent, inline=False))
            self.skip_blank_lines()
        if not (self.at_eof() or self.at_doc_marker() or self.col() <= indent):
            raise self.error("unexpected indentation in a sequence")
        return items

    # ---------------------------------------------------------------- flow nodes and scalars

    def parse_flow_node(self, *, parent: int, flow: bool) -> Any:
        """A scalar or flow collection; returns a raw :class:`RawScalar` for scalars."""
        ch = self.ch()
        if ch in "[{":
            with self.nested():
                return self.parse_flow_collection()
        if ch in "'\"":
            return self.parse_quoted()
        if ch in "&*":
            raise self.error("anchors and aliases are not supported in a kubeconfig")
        if ch == "!":
            tag = self.parse_tag()
            self.skip_flow_space()
            return self.apply_tag(tag, self.parse_flow_node(parent=parent, flow=flow))
        if not self.starts_plain(flow=flow):
            raise self.error(f"unexpected {ch!r}")
        return self.parse_plain(parent=parent, flow=flow, multiline=True)

    def skip_flow_space(self) -> None:
        while True:
            self.skip_spaces()
            if self.ch() == "#" and self.text[self.pos - 1] in " \t\n":
                while self.ch() not in BREAK:
                    self.pos += 1
            if self.ch() != "\n" or self.at_eof():
                return
            self.pos += 1
            if self.at_doc_marker():
                raise self.error("document marker inside a flow collection")

    def parse_flow_collection(self) -> dict[Any, Any] | list[Any]:
        start = self.pos
        closer = "]" if self.ch() == "[" else "}"
        self.pos += 1
        items: list[Any] = []
        mapping: dict[Any, Any] = {}
        while True:
            self.skip_flow_space()
            if self.ch() == closer:
                self.pos += 1
                return mapping if closer == "}" else items
            self.check_unterminated(start, closer)
            entry_pos = self.pos
            node = self.apply_tag(None, self.parse_flow_node(parent=-1, flow=True))
            self.skip_flow_space()
            if closer == "]":
                if self.ch() == ":":
                    raise self.error("single-pair mappings inside [...] are not supported")
                items.append(node)
            else:
                self.add_flow_pair(mapping, node, entry_pos)
            self.skip_flow_space()
            if self.ch() == ",":
                self.pos += 1
            elif self.ch() != closer:
                self.check_unterminated(start, closer)
                raise self.error(f"expected ',' or {closer!r} in a flow collection")

    def check_unterminated(self, start: int, closer: str) -> None:
        if self.at_eof():
            raise self.error(f"unterminated flow collection (expected {closer!r})", start)

    def add_flow_pair(self, mapping: dict[Any, Any], key: Any, key_pos: int) -> None:
        if isinstance(key, dict | list):
            raise self.error("collections cannot be mapping keys", key_pos)
        if key in mapping:
            raise self.error(f"duplicate key {key!r}", key_pos)
        value = None
        if self.ch() == ":":
            self.pos += 1
            self.skip_flow_space()
            if self.ch() not in ",}":
                value = self.apply_tag(None, self.parse_flow_node(parent=-1, flow=True))
        mapping[key] = value
