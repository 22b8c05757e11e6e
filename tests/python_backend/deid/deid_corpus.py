"""The leak corpus: synthetic files with a unique marker planted in every attribute of Table E.1-1,
in nested and kept sequences, in private elements (with and without creators, Explicit and
Implicit VR, private sequences) and in the file meta.

Every sequence of the table gets a realistic item holding attributes the table does not list
(SR text and codes in Content Sequence, text objects in Graphic Annotation Sequence, signatures
and certificates in Digital Signatures Sequence, code values everywhere): a sequence whose
action is D must lose them with its items. An icon image and trailing padding come along.

Markers are generated from the table itself (a valid value per VR), so a row added to the table
is planted automatically. `Planted` remembers every marker, so a test can search each output file's
bytes and every element value for all of them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

TABLE = Path(__file__).resolve().parents[3] / "contract" / "data" / "ps3.15-annex-e-2024b.tsv"
MARK_UID_ROOT = "1.2.826.0.1.3680043.10.1234.777."
# Sequences that carry a whole planted data set one level down: one kept with its UIDs replaced
# (X/Z/U*) and one whose items are cleaned (D).
NESTING_SEQUENCES = ("ReferencedImageSequence", "ContentSequence")


def table_rows() -> list[dict[str, str]]:
    lines = [line for line in TABLE.read_text().splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def tag_of(text: str) -> int:
    group, element = text.strip("()").split(",")
    return int(group, 16) << 16 | int(element, 16)


@dataclass
class Planted:
    """Every marker planted: texts and UIDs (searched in the output bytes) and values (dates,
    times, numbers: searched among the output's element values)."""

    texts: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)
    counter: int = 0
    # Code markers (Code Value, Code Meaning) -> the keywords of the sequences above them: under
    # Clean Structured Content / Clean Graphics the codes of cleaned items are structure, and stay.
    codes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def code(self, chain: tuple[str, ...]) -> str:
        marker = self.text()
        self.codes[marker] = chain
        return marker

    def kept_by_design(self, profile_options: list[str]) -> set[str]:
        """The code markers the options keep: under a sequence the profile cleans (C), with only
        kept sequences (K, U, unlisted) between it and the code."""
        from dicom_hub.contract.dicom.deid.profile import Profile
        from pydicom.datadict import tag_for_keyword

        profile = Profile(frozenset(profile_options))
        kept = set()
        for marker, chain in self.codes.items():
            actions = [profile.action(tag_for_keyword(keyword)) for keyword in chain]
            cleaned = [i for i, action in enumerate(actions) if action == "C"]
            if cleaned and all(action in (None, "K", "U") for action in actions[cleaned[-1] + 1 :]):
                kept.add(marker)
        return kept

    def text(self) -> str:
        """A marker valid for every string VR (<= 16 chars, upper case: fits AE, CS, SH)."""
        self.counter += 1
        marker = f"LEAK{self.counter:05d}Q"
        self.texts.add(marker)
        return marker

    def value(self, text: str) -> str:
        """A marker checked per element value (digits could occur by chance inside a new UID)."""
        self.values.add(text)
        return text

    def uid(self) -> str:
        self.counter += 1
        uid = f"{MARK_UID_ROOT}{self.counter}.1"
        self.uids.add(uid)
        return uid

    def value_for(self, vr: str):
        """A valid value of `vr` that carries a fresh marker (None: VR cannot carry one)."""
        self.counter += 1
        n = self.counter
        if vr in ("AE", "CS", "SH", "LO", "ST", "LT", "UT", "UC", "PN"):
            return self.text()
        if vr == "UR":
            return f"http://example.org/{self.text()}"
        if vr == "UI":
            return self.uid()
        if vr == "DA":
            return self.value(f"19{n % 90 + 10:02d}{n % 12 + 1:02d}{n % 28 + 1:02d}")
        if vr == "TM":
            return self.value(f"1010{n % 60:02d}.{n:06d}")
        if vr == "DT":
            return self.value(f"200102030405{n % 60:02d}.{n:06d}")
        if vr in ("DS", "IS"):
            return self.value(f"9{n:06d}")
        if vr in ("OB", "UN", "OW"):
            return self.text().encode() + b"\0\0"
        if vr == "AS":
            return "077Y"
        if vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
            return 7
        return None


def plant_table(
    ds: Dataset, planted: Planted, depth: int = 0, chain: tuple[str, ...] = (), sequences: bool = True
) -> None:
    """Give `ds` every public attribute of the table (groups 0000/0002 excepted), each with a marker.

    A sequence attribute gets a realistic item (`sequence_item`), so whatever the sequence's action,
    its content is tested too; while `depth` > 0 the `NESTING_SEQUENCES` also carry, in a Content
    Sequence of their item, another data set planted the same way one level down (`chain` names
    the sequences above each planted value).
    """
    for row in table_rows():
        tag = tag_of(row["tag"])
        if tag >> 16 in (0x0000, 0x0002):
            continue
        vr = dictionary_VR(tag)
        if vr == "SQ" and not sequences:
            continue
        if vr == "SQ":
            item = sequence_item(row["keyword"], planted, (*chain, row["keyword"]))
            if depth > 0 and row["keyword"] in NESTING_SEQUENCES:
                nested = Dataset()
                plant_table(nested, planted, depth - 1, (*chain, row["keyword"], "ContentSequence"))
                item.ContentSequence = Sequence([*item.get("ContentSequence", []), nested])
            ds.add_new(tag, "SQ", Sequence([item]))
            continue
        if " or " in vr:
            vr = vr.split(" or ")[0]
        value = planted.value_for(vr)
        if value is not None:
            ds.add_new(tag, vr, value)


def code_item(planted: Planted, chain: tuple[str, ...]) -> Dataset:
    item = Dataset()
    item.CodeValue = planted.code(chain)
    item.CodingSchemeDesignator = "99LEAK"
    item.CodeMeaning = planted.code(chain)
    return item


def sequence_item(keyword: str, planted: Planted, chain: tuple[str, ...]) -> Dataset:
    """One item of sequence `keyword` as a reviewer would plant it: a marked Patient Name (listed),
    marked codes and free text (not listed), private data, and what this sequence really holds."""
    item = code_item(planted, chain)
    item.PatientName = planted.text()
    item.TextValue = planted.text()
    plant_private(item, planted)
    if keyword == "ContentSequence":  # an SR TEXT item with a child: the report text two levels down
        item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
        item.ConceptNameCodeSequence = Sequence([code_item(planted, (*chain, "ConceptNameCodeSequence"))])
        child = code_item(planted, (*chain, "ContentSequence"))
        child.RelationshipType, child.ValueType, child.TextValue = "HAS PROPERTIES", "TEXT", planted.text()
        item.ContentSequence = Sequence([child])
    elif keyword == "GraphicAnnotationSequence":  # a presentation state's text object and polyline
        item.GraphicLayer = planted.code(chain)  # a layer name: structure, like a code
        text = Dataset()
        text.UnformattedTextValue = planted.text()
        text.BoundingBoxAnnotationUnits = "PIXEL"
        text.BoundingBoxTopLeftHandCorner, text.BoundingBoxBottomRightHandCorner = [1.0, 1.0], [3.0, 3.0]
        item.TextObjectSequence = Sequence([text])
        graphic = Dataset()
        graphic.GraphicAnnotationUnits, graphic.GraphicDimensions, graphic.NumberOfGraphicPoints = "PIXEL", 2, 2
        graphic.GraphicData, graphic.GraphicType = [1.0, 1.0, 2.0, 2.0], "POLYLINE"
        item.GraphicObjectSequence = Sequence([graphic])
    elif keyword == "DigitalSignaturesSequence":  # after the pixels: a signature and its certificate
        item.MACIDNumber = 1
        item.DigitalSignatureUID = planted.uid()
        item.DigitalSignatureDateTime = planted.value_for("DT")
        item.CertificateType = "X509_1993_SIG"
        item.CertificateOfSigner = planted.text().encode() * 4
        item.Signature = planted.text().encode() * 4
    return item


def plant_private(ds: Dataset, planted: Planted) -> None:
    """Private data in every shape: a creator block, an orphan element, a private sequence."""
    block = ds.private_block(0x0029, "LEAKY VENDOR", create=True)
    block.add_new(0x10, "LO", planted.text())
    block.add_new(0x11, "OB", planted.text().encode())
    inner = Dataset()
    inner.add_new(0x00100010, "PN", planted.text())
    block.add_new(0x12, "SQ", Sequence([inner]))
    ds.add_new(0x00311020, "LO", planted.text())  # orphan: no creator reserves block 0x10 of group 0x0031


def leak_dataset(
    planted: Planted, sop_uid: str | None = None, patient_id: str | None = None, flat: bool = False
) -> Dataset:
    """A CT image with the whole table planted at the top and two levels down (in every nesting
    sequence, each with markers of its own); `flat`: no table sequence but the signatures (for
    toolkits that edit top-level elements only and refuse the rest)."""
    ds = Dataset()
    plant_table(ds, planted, depth=2, sequences=not flat)
    if flat:  # only what a top-level editor can reach: signatures stay (removed whole)
        ds.DigitalSignaturesSequence = Sequence([sequence_item("DigitalSignaturesSequence", planted, ())])
        ds.IconImageSequence = Sequence()
    icon = Dataset()  # a thumbnail: pixels of its own (Icon Image Sequence is X)
    icon.Rows, icon.Columns, icon.SamplesPerPixel, icon.PhotometricInterpretation = 2, 8, 1, "MONOCHROME2"
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.PixelData = planted.text().encode()[:16].ljust(16, b"\0")
    ds.IconImageSequence.append(icon)
    ds.SOPClassUID = CTImageStorage
    if sop_uid:
        ds.SOPInstanceUID = sop_uid
    if patient_id:
        ds.PatientID = patient_id
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.Modality = "CT"
    ds.BurnedInAnnotation = "NO"
    ds.Rows, ds.Columns = 4, 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.arange(16, dtype=np.uint16).tobytes()
    # Repeating groups: overlay comments and data, curve data (the table's xx rows).
    ds.add_new(0x60004000, "LT", planted.text())
    ds.add_new(0x60023000, "OW", planted.text().encode())
    ds.add_new(0x50003000, "OW", planted.text().encode())
    ds.add_new(0x60000010, "US", 4)  # Overlay Rows: technical, kept
    # A kept public sequence (not in the table) whose items hold table attributes.
    kept = Dataset()
    kept.add_new(0x00080100, "SH", "KEPT")
    if not flat:
        kept.PatientName = planted.text()
    kept.StudyInstanceUID = planted.uid()
    plant_private(kept, planted)
    ds.DerivationCodeSequence = Sequence([kept])
    plant_private(ds, planted)
    return ds


def file_meta(ds: Dataset, planted: Planted, syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    meta.SourceApplicationEntityTitle = planted.text()
    meta.PrivateInformationCreatorUID = planted.uid()
    meta.PrivateInformation = planted.text().encode()
    return meta


def write_leak_file(path: Path, planted: Planted, *, implicit: bool = False, **kwargs) -> Path:
    ds = leak_dataset(planted, **kwargs)
    ds.file_meta = file_meta(ds, planted, ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
