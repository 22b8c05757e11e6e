"""A messy folder tree like a real archive, built from pydicom's bundled files and synthetic
series: odd extensions, extensionless and UID-named files, clutter, a text file named .dcm, a
truncated file, an unreadable one, nested folders and a symlink loop."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from conftest import sample
from factories import ct_slice, save, series
from pydicom.uid import generate_uid

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass
class Tree:
    root: Path
    dicom: list[Path] = field(default_factory=list)  # files that read fine
    broken: dict[Path, str] = field(default_factory=dict)  # taken by discovery, fail with this code
    clutter: list[Path] = field(default_factory=list)  # left out by discovery
    raw: Path | None = None  # a data set without preamble (taken only with include_raw)

    @property
    def taken(self) -> list[Path]:
        return sorted([*self.dicom, *self.broken], key=lambda p: p.parts)


def build_tree(root: Path) -> Tree:
    tree = Tree(root)
    a, deep = root / "a", root / "a" / "b" / "c"

    def copy(name: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample(name), dest)
        tree.dicom.append(dest)
        return dest

    copy("CT_small.dcm", a / "CT_small.dcm")
    copy("MR_small.dcm", a / "MR_SMALL.DCM")
    copy("JPEG2000.dcm", a / "scan.IMA")
    copy("SC_rgb_rle.dcm", a / "colour.dicom")
    copy("CT_small.dcm", deep / "IMAGE0001")  # extensionless, DICM at 128
    copy("MR_small.dcm", deep / "1.2.826.0.1.3680043.10.1234.77")  # named by UID
    tree.dicom.extend(series(root / "series", count=3))

    (root / "notes.txt").write_text("not DICOM\n")
    (deep / "README").write_text("an extensionless text file, long enough to be sniffed " * 4)
    (a / "thumbs.db").write_bytes(b"\x00" * 300)
    tree.clutter += [root / "notes.txt", deep / "README", a / "thumbs.db"]

    fake = root / "fake.dcm"
    fake.write_text("I am a text file with a .dcm name\n" * 10)
    truncated = root / "truncated.dcm"
    truncated.write_bytes(sample("CT_small.dcm").read_bytes()[:1000])
    locked = root / "locked.dcm"
    shutil.copyfile(sample("CT_small.dcm"), locked)
    locked.chmod(0)
    tree.broken = {fake: "not_dicom", truncated: "decode_error"}
    if ROOT_USER:  # root reads a chmod-000 file: it is then just another good file
        tree.dicom.append(locked)
    else:
        tree.broken[locked] = "input_not_found"

    raw = root / "raw" / "nopreamble"
    ds = ct_slice(PatientID="RAW001")
    del ds.file_meta
    raw.parent.mkdir()
    ds.save_as(raw, enforce_file_format=False, implicit_vr=True, little_endian=True)
    tree.raw = raw

    (deep / "loop").symlink_to(a, target_is_directory=True)  # a -> b -> c -> loop -> a
    return tree


def synthetic_archive(root: Path, patients: int, studies: int = 1, slices: int = 5) -> list[Path]:
    """Distinct patients/studies/series of small synthetic CT slices."""
    files = []
    for p in range(patients):
        for s in range(studies):
            study = generate_uid("1.2.826.0.1.3680043.10.1234.")
            folder = root / f"P{p:04d}" / f"S{s}"
            files += [
                save(ct_slice(instance=i + 1, seed=i, study_uid=study, PatientID=f"P{p:04d}", PatientName=f"Doe^P{p}"), folder / f"{i:03d}.dcm")
                for i in range(slices)
            ]
    return files


MIXED_SAMPLES = [
    "CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "SC_rgb.dcm", "emri_small.dcm",
    "rtdose.dcm", "ExplVR_BigEnd.dcm", "image_dfl.dcm", "MR_truncated.dcm", "nested_priv_SQ.dcm", "rtstruct.dcm",
]  # fmt: skip


def mixed_samples(root: Path) -> Path:
    """pydicom's own sample files (CT, MR, RT, JPEG 2000, big endian, deflated, a cut file...) and
    a file with spreadsheet formulas, in an order where the table's columns keep growing."""
    from pydicom.data import get_testdata_file

    root.mkdir(parents=True)
    for i, name in enumerate(MIXED_SAMPLES):
        shutil.copy(get_testdata_file(name), root / f"{i:02d}_{name}")
    save(ct_slice(PatientID="+cmd|' /C calc'!A0", StudyDescription='=HYPERLINK("http://evil","x")'), root / "99_formula.dcm")
    return root
