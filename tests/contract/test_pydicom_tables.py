"""`contract/dicom/pydicom_tables.py` answers exactly what pydicom's datadict answers, for every tag of
the standard dictionary, every repeating group, private tags and tags nobody knows; and it reads
the dictionary without importing pydicom (the point of it)."""

from __future__ import annotations

import subprocess
import sys

from dicom_hub.contract.dicom import pydicom_tables as dictionary
from pydicom import datadict
from pydicom._dicom_dict import DicomDictionary, RepeatersDictionary
from pydicom._private_dict import private_dictionaries


def _pydicom_vr(tag: int) -> str | None:
    try:
        return datadict.dictionary_VR(tag)
    except KeyError:
        return None


def _tags() -> set[int]:
    tags = set(DicomDictionary)
    for mask in RepeatersDictionary:  # every repeating group, at both ends of its range
        tags.update(int(mask.replace("x", fill), 16) for fill in "02EF")
    # group lengths, private creators and data, unknown standard tags, delimiters
    tags.update({0x00080000, 0x00290000, 0x00290010, 0x00291010, 0x7FE10010, 0x00181234, 0xFFFEE000, 0x10000000, 0x10001234, 0x10011234})
    return tags


def test_keywords_and_vrs_equal_pydicoms():
    for tag in sorted(_tags()):
        assert dictionary.keyword_for_tag(tag) == datadict.keyword_for_tag(tag), hex(tag)
        assert dictionary.dictionary_vr(tag) == _pydicom_vr(tag), hex(tag)


def test_keyword_lookup_equals_pydicoms():
    for entry in DicomDictionary.values():
        assert dictionary.tag_for_keyword(entry[4]) == datadict.tag_for_keyword(entry[4]), entry[4]
    assert dictionary.tag_for_keyword("NoSuchKeyword") is None


def _pydicom_private_vr(tag: int, creator: str) -> str | None:
    try:
        return datadict.private_dictionary_VR(tag, creator)
    except KeyError:
        return None


def test_private_vrs_equal_pydicoms():
    checked = 0
    for creator, entries in private_dictionaries.items():
        for key in entries:
            for fill in "01":  # 'xx' as the block (0x10xx) or as another digit
                tag = int(key.replace("x", fill), 16)
                expected = _pydicom_private_vr(tag, creator)
                assert dictionary.private_dictionary_vr(tag, creator) == expected, (creator, key)
                checked += expected is not None
    assert checked > 10000
    assert dictionary.private_dictionary_vr(0x00091001, "NO SUCH CREATOR") is None


def test_reading_the_dictionary_imports_no_pydicom():
    code = (
        "import sys\n"
        "from dicom_hub.contract.dicom import pydicom_tables as dictionary\n"
        "assert dictionary.keyword_for_tag(0x00100010) == 'PatientName'\n"
        "assert dictionary.dictionary_vr(0x60020010) == 'US'\n"
        "assert dictionary.private_dictionary_vr(0x00091024, 'GEMS_ACQU_01') is not None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydicom', 'numpy')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
