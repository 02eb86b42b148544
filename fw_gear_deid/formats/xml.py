"""XML: XPath selectors over every matching node; declaration, encoding and everything else kept.

Parsing is hardened before lxml sees the document: defusedxml (on the stdlib expat parser) refuses
any entity declaration (billion laughs, quadratic blow-up) and any external entity or DTD reference;
lxml then parses with entity resolution, DTD loading, network access and huge-tree mode all off.

A field ``name`` is an XPath (``/a/b``, ``//b``, ``//@id``, ``//b/text()``, prefixes declared in the
document may be used) and acts on every node it selects (flywheel-migration refuses a path matching
more than one node). Elements change their text, attributes their value; ``remove`` deletes the
element (its tail text stays) or attribute. Dates not in the section's format are read with dateutil
and rewritten in it before shifting, as flywheel-migration does. The source's XML declaration is
written back byte for byte (the reference drops it) and the output keeps the source's encoding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException
from lxml import etree

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext, DeidOutcome
from fw_gear_deid.formats._common import REMOVED, Recorder, Rule, RuleHandler, sensitive_kind
from fw_gear_deid.formats._output import output_file

_DECLARATION = re.compile(rb"^(\xef\xbb\xbf)?(<\?xml[^>]*\?>)")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
        strip_cdata=False,
    )


def parse_safely(data: bytes, source: str) -> etree._ElementTree:
    """The document, refusing entity declarations, external references and malformed XML."""
    try:
        safe_et.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedFileError(
            source, f"refused unsafe XML: {type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:  # expat errors (ParseError) and codec problems
        raise MalformedFileError(source, f"not well-formed XML: {exc}") from exc
    try:
        return etree.ElementTree(etree.fromstring(data, _parser()))
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise MalformedFileError(source, f"not well-formed XML: {exc}") from exc


def namespaces(tree: etree._ElementTree) -> dict[str, str]:
    """Every prefix declared in the document (usable in field XPaths)."""
    found: dict[str, str] = {}
    for element in tree.iter():
        if isinstance(element.tag, str):
            for prefix, uri in (element.nsmap or {}).items():
                if prefix:
                    found.setdefault(prefix, uri)
    return found


class XmlHandler(RuleHandler):
    section_name = "xml"
    default_filters = ("*.xml", "*.XML", "*.Xml")

    def matches_signature(self, head: bytes) -> bool:
        return head.lstrip(b"\xef\xbb\xbf").startswith(b"<?xml ")

    def _select(self, tree: etree._ElementTree, rule: Rule, source: str) -> list[Any]:
        expression = rule.name if rule.name is not None else rule.regex.pattern  # type: ignore[union-attr]
        try:
            found = tree.xpath(expression, namespaces=namespaces(tree))
        except etree.XPathError as exc:
            raise MalformedFileError(
                source, f"XPath {expression!r} cannot be evaluated: {exc}"
            ) from exc
        return found if isinstance(found, list) else []

    @staticmethod
    def _value(tree: etree._ElementTree, node: Any) -> tuple[str, str] | None:
        """(path, text) of a selected node, None for nodes without a value."""
        if isinstance(node, etree._Element):
            if not isinstance(node.tag, str):  # comment or processing instruction
                parent = node.getparent()
                where = tree.getpath(parent) if parent is not None else ""
                return f"{where}/comment()", node.text or ""
            return tree.getpath(node), node.text or ""
        if isinstance(node, etree._ElementUnicodeResult):
            parent = node.getparent()
            if node.is_attribute:
                return f"{tree.getpath(parent)}/@{node.attrname}", str(node)
            return f"{tree.getpath(parent)}/{'tail' if node.is_tail else 'text()'}", str(node)
        return None

    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        source = ctx.source_name or src.name
        data = src.read_bytes()
        tree = parse_safely(data, source)
        outcome = DeidOutcome(output_name=src.name)
        rec = Recorder(outcome, preview=dst is None)
        for rule in self.rules:
            if not rule.is_keep:
                self._apply(tree, rule, ctx, rec, source)
        changed = bool(outcome.changes)
        outcome.output_name = self.output_name(src, ctx, rec, lambda name: self._lookup(tree, name))
        if dst is not None:
            with output_file(dst) as out:
                # nothing changed: the source bytes, not lxml's rendering of them
                out.write(self.serialise(tree, data) if changed else data)  # type: ignore[union-attr]
        return outcome

    def _lookup(self, tree: etree._ElementTree, name: str) -> str | None:
        try:
            for node in tree.xpath(name, namespaces=namespaces(tree)):
                found = self._value(tree, node)
                if found is not None:
                    return found[1]
        except etree.XPathError:
            return None
        return None

    def _apply(
        self, tree: etree._ElementTree, rule: Rule, ctx: DeidContext, rec: Recorder, source: str
    ) -> None:
        for node in self._select(tree, rule, source):
            found = self._value(tree, node)
            if found is None:
                continue
            path, before = found
            if rule.is_remove:
                try:
                    self._remove(node)
                except ValueError as exc:
                    raise MalformedFileError(source, f"{path}: {exc}") from exc
                self._record_removed(tree, node, path, before, rec)
                continue
            try:
                result = rule.apply(
                    rule.normalise_date(before),
                    ctx,
                    lookup=lambda n: self._lookup(tree, n),
                    path=path,
                )
            except (ValueError, TypeError, KeyError) as exc:
                raise MalformedFileError(source, f"{path}: {rule.action} failed: {exc}") from exc
            if result is REMOVED:
                self._remove(node)
                rec.change(
                    path, rule.action, before, None, kind=sensitive_kind(rule.action, path, before)
                )
                continue
            if str(result) != before:
                self._set(node, str(result))
                rec.change(
                    path,
                    rule.action,
                    before,
                    str(result),
                    kind=sensitive_kind(rule.action, path, before),
                )

    def _record_removed(
        self, tree: etree._ElementTree, node: Any, path: str, before: str, rec: Recorder
    ) -> None:
        rec.change(path, "remove", before, None)
        if isinstance(node, etree._Element) and isinstance(node.tag, str):
            for inner_path, text in self._texts_of(tree, node, include_self=False):
                rec.sensitive(sensitive_kind("remove", inner_path, text), text, inner_path)

    @staticmethod
    def _remove(node: Any) -> None:
        if isinstance(node, etree._Element):
            parent = node.getparent()
            if parent is None and not isinstance(node.tag, str):
                node.text = ""  # a comment/PI outside the root cannot be detached: emptied
                return
            if parent is None:
                raise ValueError("cannot remove the root element")
            if node.tail:  # the tail belongs to the surrounding text, keep it
                previous = node.getprevious()
                if previous is not None:
                    previous.tail = (previous.tail or "") + node.tail
                else:
                    parent.text = (parent.text or "") + node.tail
            parent.remove(node)
            return
        parent = node.getparent()
        if node.is_attribute:
            del parent.attrib[node.attrname]
        elif node.is_tail:
            parent.tail = None
        else:
            parent.text = None

    @staticmethod
    def _set(node: Any, value: str) -> None:
        if isinstance(node, etree._Element):
            node.text = value
            return
        parent = node.getparent()
        if node.is_attribute:
            parent.set(node.attrname, value)
        elif node.is_tail:
            parent.tail = value
        else:
            parent.text = value

    @staticmethod
    def serialise(tree: etree._ElementTree, source: bytes) -> bytes:
        """The document in the source's encoding. The prolog (declaration, comments, doctype) and
        what follows the root are copied from the source byte for byte when nothing there changed;
        only the root element is serialised by lxml."""
        encoding = tree.docinfo.encoding or "UTF-8"
        ascii_compatible = encoding.lower().replace("-", "") not in (
            "utf16",
            "utf32",
            "ucs2",
            "ucs4",
        )
        span = _root_span(source) if ascii_compatible else None
        root = tree.getroot()
        siblings = [*root.itersiblings(preceding=True), *root.itersiblings()]
        if span is not None and _misc_unchanged(
            siblings, source[: span[0]] + source[span[1] :], encoding
        ):
            body = etree.tostring(root, encoding=encoding, xml_declaration=False, with_tail=False)
            return source[: span[0]] + body + source[span[1] :]
        declaration = _DECLARATION.match(source)
        if not ascii_compatible:  # UTF-16/32: lxml writes the BOM and a declaration of its own
            return etree.tostring(tree, encoding=encoding, xml_declaration=_declared(source))
        if declaration is None:
            return etree.tostring(tree, encoding=encoding, xml_declaration=False)
        gap = re.match(rb"[ \t\r\n]*", source[declaration.end() :]).group(0)  # type: ignore[union-attr]
        body = etree.tostring(tree, encoding=encoding, xml_declaration=False)
        return source[: declaration.end()] + gap + body

    def _texts_of(
        self, tree: etree._ElementTree, root: Any, include_self: bool = True
    ) -> Iterator[tuple[str, str]]:
        for element in root.iter():
            if element is root and not include_self:
                for name, value in element.attrib.items():
                    yield f"{tree.getpath(element)}/@{name}", value
                for child in element:
                    if child.tail and child.tail.strip():
                        yield f"{tree.getpath(element)}/text()", child.tail
                if element.text and element.text.strip():
                    yield tree.getpath(element), element.text
                continue
            if not isinstance(element.tag, str):
                if element.text and element.text.strip():
                    yield (
                        f"{tree.getpath(element.getparent()) if element.getparent() is not None else ''}/comment()",
                        element.text,
                    )
                if element.tail and element.tail.strip():
                    yield "tail", element.tail
                continue
            path = tree.getpath(element)
            if element.text and element.text.strip():
                yield path, element.text
            if element.tail and element.tail.strip() and element is not root:
                yield f"{path}/tail", element.tail
            for name, value in element.attrib.items():
                yield f"{path}/@{name}", value

    def record_value(self, path: Path, name: str) -> str | None:
        return self._lookup(parse_safely(path.read_bytes(), path.name), name)

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        yield "filename", path.name
        data = path.read_bytes()
        tree = parse_safely(data, path.name)
        root = tree.getroot()
        for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
            if sibling.text and sibling.text.strip():
                yield "/comment()", sibling.text
        yield from self._texts_of(tree, root)


_MISC = re.compile(rb"\s+|<!--.*?-->|<\?.*?\?>", re.DOTALL)
_DOCTYPE = re.compile(rb"<!DOCTYPE(?:[^\[>]|\[.*?\])*>", re.DOTALL)


def _root_span(source: bytes) -> tuple[int, int] | None:
    """Where the root element starts and ends in the source bytes (None if it cannot be told)."""
    pos = len(b"\xef\xbb\xbf") if source.startswith(b"\xef\xbb\xbf") else 0
    while True:
        match = _MISC.match(source, pos) or _DOCTYPE.match(source, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
    if source[pos : pos + 1] != b"<":
        return None
    end = len(source)
    while True:
        stripped = source[:end].rstrip()
        if stripped.endswith(b"-->"):
            start = stripped.rfind(b"<!--")
        elif stripped.endswith(b"?>"):
            start = stripped.rfind(b"<?")
        else:
            end = len(stripped)
            break
        if start < pos:
            return None
        end = start
    return (pos, end) if end > pos else None


def _misc_unchanged(siblings: list, outside: bytes, encoding: str) -> bool:
    """Whether every comment/PI around the root still reads as in the source (no rule changed it)."""
    for node in siblings:
        text = etree.tostring(node, encoding=encoding, xml_declaration=False, with_tail=False)
        if text not in outside:
            return False
    return True


def _declared(source: bytes) -> bool:
    """Whether a UTF-16/32 document starts with an XML declaration."""
    head = source[:160]
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, "ignore").startswith("<?xml")
    return False
