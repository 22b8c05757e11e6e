"""The C-FIND matching rules (PS3.4 C.2.2.2) of the Query/Retrieve SCP, one rule at a time, and the
`AET=host:port` destinations of `dicom-hub scp --move-destination` (no network)."""

from __future__ import annotations

import pytest
from dicom_hub.python_backend.network.matching import dataset_matches, value_matches
from dicom_hub.python_backend.network.qr_scp import parse_destination
from pydicom import Dataset


@pytest.mark.parametrize(
    ("vr", "key", "stored", "expected"),
    [
        ("PN", "Doe^John", "DOE^JOHN", True),  # PN: case-insensitive
        ("LO", "abc", "ABC", False),  # other text: case-sensitive
        ("LO", "A?C", "ABC", True),
        ("LO", "A?C", "ABBC", False),
        ("LO", "A*C", "ABBBC", True),
        ("LO", "A*", "BA", False),
        ("CS", " CT ", "CT", True),  # spaces around text values are not significant
        ("UI", "1.2.*", "1.2.3", False),  # no wildcards in UIDs
        ("DA", "20200101-20201231", "20200615", True),
        ("DA", "20200101-20201231", "20210101", False),
        ("DA", "-20200101", "20200101", True),  # inclusive bound
        ("DA", "20200102-", "20200101", False),
        ("DA", "2020*", "20200101", False),  # no wildcards in dates
        ("TM", "10-10", "105959.9", True),  # a partial upper bound covers its hour
        ("TM", "10-10", "110000", False),
        ("TM", "1030-", "103000", True),
        ("DT", "2020-2020", "20201231235959", True),
        ("DT", "2020-2020", "20210101", False),
        ("IS", "01", "1", True),  # numbers compare as numbers
        ("US", "512", 512, True),
    ],
)
def test_value_matching(vr, key, stored, expected):
    assert value_matches(vr, key, stored) is expected


def _instance() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.StudyInstanceUID = "1.2.3"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDate = "20200615"
    item = Dataset()
    item.CodeValue = "T-A0100"
    item.CodingSchemeDesignator = "SRT"
    other = Dataset()
    other.CodeValue = "T-D3000"
    other.CodingSchemeDesignator = "SRT"
    ds.AnatomicRegionSequence = [item, other]
    return ds


def _query(**keys) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_dataset_matching_rules():
    ds = _instance()
    assert dataset_matches(_query(PatientName="", StudyDate=""), ds)  # universal matching
    assert dataset_matches(_query(PatientName="*"), ds)
    assert not dataset_matches(_query(AccessionNumber="A1"), ds)  # an absent value never matches a value
    assert dataset_matches(_query(StudyInstanceUID=["9.9", "1.2.3"]), ds)  # list of UIDs
    assert not dataset_matches(_query(StudyInstanceUID=["9.9", "1.2.4"]), ds)
    assert dataset_matches(_query(ImageType="AXIAL"), ds)  # one value of a multi-valued attribute
    item = Dataset()
    item.CodeValue = "T-D3000"
    assert dataset_matches(_query(AnatomicRegionSequence=[item]), ds)  # sequence matching, any item
    item.CodingSchemeDesignator = "99LOCAL"
    assert not dataset_matches(_query(AnatomicRegionSequence=[item]), ds)  # every key of one item
    assert dataset_matches(_query(AnatomicRegionSequence=[Dataset()]), ds)  # empty item: universal
    assert not dataset_matches(_query(PatientName="Doe^Jane", StudyDate="2021-"), ds)  # all keys must match


def test_move_destinations():
    assert parse_destination("STORESCP=127.0.0.1:11112") == parse_destination("STORESCP=127.0.0.1:11112")
    dest = parse_destination("MY AE=localhost:104")
    assert (dest.aet, dest.host, dest.port) == ("MY AE", "localhost", 104)
    for bad in ("NOPORT=127.0.0.1", "=127.0.0.1:104", "AE=127.0.0.1:0", "AE=127.0.0.1:70000", "TOOLONGAETITLE1234=h:1", "AE=h;rm:1"):
        with pytest.raises(ValueError):
            parse_destination(bad)
