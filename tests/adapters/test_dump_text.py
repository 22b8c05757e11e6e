"""The dcmdump/gdcmdump text parser on fixed lines in both formats (no toolkit needed)."""

from __future__ import annotations

from dicom_hub.adapters.toolkit import dump_text

DCMDUMP = """\
# Dicom-Meta-Information-Header
(0002,0010) UI [1.2.840.10008.1.2.1]                    #  20, 1 TransferSyntaxUID

# Dicom-Data-Set
(0008,0008) CS [ORIGINAL\\PRIMARY\\AXIAL]                 #  22, 3 ImageType
(0008,0050) SH (no value available)                     #   0, 0 AccessionNumber
(0008,1030) LO [a # sign\\b]                             #  10, 2 StudyDescription
(0010,1002) SQ (Sequence with explicit length #=2)      #  72, 1 OtherPatientIDsSequence
  (fffe,e000) na (Item with explicit length #=1)          #  12, 1 Item
    (0010,0020) LO [ABCD1234]                               #   8, 1 PatientID
  (fffe,e00d) na (ItemDelimitationItem for re-encoding)   #   0, 0 ItemDelimitationItem
  (fffe,e000) na (Item with explicit length #=1)          #  12, 1 Item
    (0010,0020) LO [1234ABCD]                               #   8, 1 PatientID
  (fffe,e00d) na (ItemDelimitationItem for re-encoding)   #   0, 0 ItemDelimitationItem
(fffe,e0dd) na (SequenceDelimitationItem for re-encod.) #   0, 0 SequenceDelimitationItem
(0018,1030) LT [back\\slash is text]                     #  18, 1 ProtocolName
(0028,0010) US 128                                      #   2, 1 Rows
(0028,0030) DS [0.661468\\0.661468]                      #  18, 2 PixelSpacing
(0028,1052) DS [-1024 ]                                 #   6, 1 RescaleIntercept
(0043,104e) FL 10.6006098\\2.5                          #   8, 2 DurationOfXrayOn
(7fe0,0010) OW (not loaded)                             # 32768, 1 PixelData
"""

GDCMDUMP_IMPLICIT = """\
(0008,0012) ?? (DA) [20030903]                                    # 8,1 Instance Creation Date
(0010,0020) UN (LO) [id11111 ]                                    # 8,1 Patient ID
(0018,1020) LO [CX50_210\\cut here]                                # 264,1-n Software Version(s)
"""


def test_values_are_rendered_like_the_python_backend():
    lines = dump_text.parse_dump(DCMDUMP)
    keywords = ("ImageType", "AccessionNumber", "StudyDescription", "PatientID", "ProtocolName", "Rows", "PixelSpacing", "RescaleIntercept")
    values = dump_text.top_level_values(lines, keywords)
    assert values == {
        "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        "AccessionNumber": None,
        "StudyDescription": ["a # sign", "b"],  # '#' inside a value does not end it
        "ProtocolName": "back\\slash is text",  # LT: one value
        "Rows": 128,
        "PixelSpacing": ["0.661468", "0.661468"],
        "RescaleIntercept": "-1024",
    }  # PatientID only inside the sequence: not a top-level value
    assert dump_text.meta_value(lines, 0x00020010) == "1.2.840.10008.1.2.1"
    floats = [line for line in lines if line.tag == 0x0043104E][0]
    assert dump_text.element_value(floats) == [10.6006098, 2.5]


def test_depths_items_and_selection():
    lines = dump_text.parse_dump(DCMDUMP)
    patient_ids = [line for line in lines if line.tag == 0x00100020]
    assert [line.depth for line in patient_ids] == [1, 1]
    elements = dump_text.elements_metadata(dump_text.select_lines(lines, None, False), 64)
    assert {"tag": "00101002", "vr": "SQ", "keyword": "OtherPatientIDsSequence", "depth": 0, "value": "<sequence of 2 item(s)>"} in elements
    assert "7FE00010" not in [e["tag"] for e in elements]
    top = dump_text.select_lines(lines, 0, True)
    assert all(line.depth == 0 for line in top) and top[-1].tag == 0x7FE00010
    assert dump_text.shown_value(top[-1], 64) == "<OW binary, 32768 bytes>"


def test_gdcm_implicit_vr_and_cut_values():
    lines = dump_text.parse_dump(GDCMDUMP_IMPLICIT)
    assert [(line.vr, dump_text.element_value(line)) for line in lines[:2]] == [("DA", "20030903"), ("LO", "id11111")]
    assert dump_text.is_cut(lines[2]) and not dump_text.is_cut(lines[0])
    full = dump_text.parse_tab_dump("(0018,1020)\tLO\t264\tCX50_210\\the whole value\n  (0010,0020)\tLO\t4\tnested")
    assert full == {0x00181020: "CX50_210\\the whole value"}
    fixed = dump_text.with_full_values(lines, full)
    assert dump_text.element_value(fixed[2]) == ["CX50_210", "the whole value"]


def test_cut_line_keeps_the_tool_format():
    line = dump_text.parse_dump(DCMDUMP)[0]
    assert dump_text.cut_line(line, 10) == line.line.replace("[1.2.840.10008.1.2.1]", "[1.2.84...", 1)
