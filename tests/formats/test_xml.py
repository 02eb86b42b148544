"""XML: XPath over every match (elements, attributes, namespaces); declaration kept; hardened parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import named
from lxml import etree

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats.xml import XmlHandler

REPORT = """<?xml version="1.0" encoding="ISO-8859-1" standalone="yes"?>
<!-- exported for Jöhn Doe -->
<r:Report xmlns:r="urn:example:report" xmlns="urn:example:default" version="2">
  <r:Patient mrn="MRN0042917" sex="F">
    <r:Name>Jöhn Doe</r:Name>
    <r:Name>J. Doe</r:Name>
    <r:Address>1 Main St</r:Address>
  </r:Patient>
  <Visit date="2020-01-02">follow-up<Note>seen by Dr Who</Note>tail text</Visit>
</r:Report>
"""


def write(tmp_path: Path, text: str = REPORT, encoding: str = "ISO-8859-1") -> Path:
    src = tmp_path / "report.xml"
    src.write_bytes(text.encode(encoding))
    return src


def run(tmp_path: Path, fields: list[dict], ctx, text: str = REPORT) -> tuple[Path, Path, object]:
    src = write(tmp_path, text)
    dst = tmp_path / "out.xml"
    return src, dst, XmlHandler({"fields": fields}).deidentify(src, dst, named(ctx, src.name))


def test_xpath_removes_every_matching_element_and_attribute_with_namespaces(tmp_path, ctx):
    fields = [{"name": "//r:Name", "remove": True}, {"name": "//r:Patient/@mrn", "remove": True}]
    _src, dst, outcome = run(tmp_path, fields, ctx)
    tree = etree.parse(str(dst))
    ns = {"r": "urn:example:report"}
    assert tree.xpath("//r:Name", namespaces=ns) == []
    assert tree.xpath("//r:Patient/@mrn", namespaces=ns) == []
    assert tree.xpath("//r:Patient/@sex", namespaces=ns) == ["F"]
    assert tree.xpath("//r:Address/text()", namespaces=ns) == ["1 Main St"]
    assert {"Jöhn Doe", "J. Doe", "MRN0042917"} <= {s.value for s in outcome.sensitive}


def test_declaration_encoding_and_untouched_bytes_are_kept(tmp_path, ctx):
    src, dst, _ = run(tmp_path, [{"name": "//r:Address", "remove": True}], ctx)
    out = dst.read_bytes()
    assert out.startswith(b'<?xml version="1.0" encoding="ISO-8859-1" standalone="yes"?>\n')
    assert "Jöhn Doe".encode("latin-1") in out  # still Latin-1, not re-encoded as UTF-8
    # only the element goes: the prolog, comment, layout and every other byte stay as they were
    assert out == src.read_bytes().replace(b"<r:Address>1 Main St</r:Address>", b"")


def test_removing_an_element_keeps_its_tail_text(tmp_path, ctx):
    _src, dst, _ = run(tmp_path, [{"name": "//*[local-name()='Note']", "remove": True}], ctx)
    visit = etree.parse(str(dst)).getroot().find("{urn:example:default}Visit")
    assert "".join(visit.itertext()) == "follow-uptail text"


def test_text_values_include_attributes_comments_and_tails(tmp_path):
    src = write(tmp_path)
    texts = [text for _path, text in XmlHandler({}).text_values(src)]
    for value in (
        "MRN0042917",
        " exported for Jöhn Doe ",
        "tail text",
        "seen by Dr Who",
        "2020-01-02",
    ):
        assert value in texts


@pytest.mark.parametrize(
    ("doctype", "reason"),
    [
        (
            '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>',
            "EntitiesForbidden",
        ),
        ('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "EntitiesForbidden"),
    ],
)
def test_entity_bombs_and_external_references_are_refused(tmp_path, ctx, doctype, reason):
    src = tmp_path / "evil.xml"
    src.write_text(f'<?xml version="1.0"?>\n{doctype}\n<r>&#65;</r>')
    dst = tmp_path / "out.xml"
    with pytest.raises(MalformedFileError, match=reason):
        XmlHandler({"fields": [{"name": "//x", "remove": True}]}).deidentify(
            src, dst, named(ctx, src.name)
        )
    assert not dst.exists()


def test_external_dtd_is_never_loaded(tmp_path, ctx):
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ATTLIST r leak CDATA "LEAKED-FROM-DTD">')
    src = tmp_path / "doc.xml"
    src.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "{dtd.as_uri()}">\n<r><x>Jane</x></r>\n'
    )
    dst = tmp_path / "out.xml"
    XmlHandler({"fields": [{"name": "//x", "remove": True}]}).deidentify(
        src, dst, named(ctx, src.name)
    )
    assert b"LEAKED" not in dst.read_bytes()
    assert dst.read_bytes() == src.read_bytes().replace(b"<r><x>Jane</x></r>", b"<r/>")


def test_removing_the_root_element_is_a_clear_error(tmp_path, ctx):
    src = write(tmp_path)
    with pytest.raises(MalformedFileError, match="root"):
        XmlHandler({"fields": [{"name": "/*", "remove": True}]}).deidentify(
            src, None, named(ctx, src.name)
        )


def test_malformed_xml_is_refused(tmp_path, ctx):
    src = write(tmp_path, "<?xml version='1.0'?><a><b></a>")
    with pytest.raises(MalformedFileError, match="well-formed"):
        XmlHandler({}).deidentify(src, None, named(ctx, src.name))


def test_xml_matches_its_signature_and_default_filters():
    handler = XmlHandler({})
    assert handler.matches("a.XML", b"")
    assert handler.matches("export", b'<?xml version="1.0"?>')
    assert not handler.matches("export", b"<html>")


def test_comment_outside_the_root_can_be_removed(tmp_path, ctx):
    _src, dst, outcome = run(tmp_path, [{"name": "/comment()", "remove": True}], ctx)
    assert "Jöhn".encode("latin-1") in dst.read_bytes()  # still inside the document
    assert b"exported for" not in dst.read_bytes()
    assert " exported for Jöhn Doe " in {s.value for s in outcome.sensitive}


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        (
            '<?xml version="1.0" encoding="UTF-16"?>\n<r><n>Jäne</n><k>x</k></r>\n'.encode(
                "utf-16"
            ),
            b"\xff\xfe<\x00?\x00x\x00m\x00l\x00",
        ),
        (
            b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<r><n>J\xc3\xa4ne</n><k>x</k></r>\n',
            b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<r><k>',
        ),
        (b"<r><n>Jane</n><k>x</k></r>", b"<r><k>x</k></r>"),
    ],
    ids=["utf-16", "utf-8-bom", "no-declaration"],
)
def test_encodings_boms_and_missing_declarations_are_kept(tmp_path, ctx, data, prefix):
    src = tmp_path / "doc.xml"
    src.write_bytes(data)
    dst = tmp_path / "out.xml"
    XmlHandler({"fields": [{"name": "//n", "remove": True}]}).deidentify(
        src, dst, named(ctx, src.name)
    )
    assert dst.read_bytes().startswith(prefix)
    assert [text for path, text in XmlHandler({}).text_values(dst) if path != "filename"] == ["x"]


def test_document_no_rule_touches_is_written_byte_for_byte(tmp_path, ctx):
    text = "<?xml version='1.0'?>\n<r a='1'><e></e><f>&amp;&#233;</f></r>\n"
    src, dst, outcome = run(tmp_path, [{"name": "//missing", "remove": True}], ctx, text=text)
    assert outcome.changes == []
    assert dst.read_bytes() == src.read_bytes()
