"""The verification layer: a backend's DICOM output is checked before the answer says ok, and a
file that fails is refused (`backend_error` with the reason) and removed.

A fake backend writes deliberately broken files (truncated, wrong transfer syntax, new SOP
Instance UID, a changed element, bad fragments) derived from pydicom's bundled files; the real
backends' correct outputs must still pass.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import backend_request, expect_error, expect_ok
from dicom_hub.adapters.base import Adapter, Availability, Unsupported, supports
from dicom_hub.adapters.verify import fragments_problem, verify_file
from dicom_hub.contract.catalog import load_catalog
from dicom_hub.contract.job import Job, Outcome
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, generate_uid


def _write(ds, path: Path) -> None:
    ds.save_as(path, enforce_file_format=True)


def _truncated(job: Job) -> None:
    data = Path(job.input).read_bytes()
    job.output.write_bytes(data[: len(data) - 1000])


def _wrong_syntax(job: Job) -> None:
    shutil.copyfile(job.input, job.output)  # CT_small is Explicit VR LE; the request asks for implicit


def _new_uid(job: Job) -> None:
    ds = dcmread(job.input)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    _write(ds, job.output)


def _changed_element(job: Job) -> None:
    ds = dcmread(job.input)
    ds.PixelSpacing = [0.5, 0.5]
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    _write(ds, job.output)


def _short_pixels(job: Job) -> None:
    ds = dcmread(job.input)
    ds.PixelData = ds.PixelData[:-64]
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    _write(ds, job.output)


def _unpacked_one_bit(job: Job) -> None:
    """What pydicom's decompress() left for 1-bit images: a byte a pixel, Bits Allocated 1."""
    ds = dcmread(job.input)
    ds.PixelData = ds.pixel_array.astype("uint8").tobytes()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    _write(ds, job.output)


def _bad_fragments(job: Job) -> None:
    ds = dcmread(job.input)
    frames = [ds.PixelData[:100]]  # two frames declared, one fragment
    ds.NumberOfFrames = 2
    ds.PixelData = encapsulate(frames)
    ds.file_meta.TransferSyntaxUID = RLELossless
    _write(ds, job.output)


def _modified_and_more(job: Job) -> None:
    """Sets what modify_tags asked, and also touches an element it was not asked to."""
    ds = dcmread(job.input)
    ds.PatientName = job.options["set"]["PatientName"]
    ds.StudyDescription = "changed on the side"
    _write(ds, job.output)


def _reformatted_decimals(job: Job) -> None:
    """The same numbers written with other digits, as GDCM does: not a change."""
    ds = dcmread(job.input)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    # 0.661468 -> .66146799999999 (a double's last digits, no leading zero: what GDCM wrote)
    ds["PixelSpacing"].value = [f"{float(v) * (1 - 1e-14):.14g}".removeprefix("0") for v in ds.PixelSpacing]
    _write(ds, job.output)


def _faithful(job: Job) -> None:
    ds = dcmread(job.input)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    _write(ds, job.output)


SEEN: list[tuple[Path, list[str]]] = []  # what a backend was given, and what its folder held then


def _watched(job: Job) -> None:
    """Faithful, and notes where it was asked to write and what was in that folder meanwhile."""
    _faithful(job)
    SEEN.append((job.output, sorted(p.name for p in job.output.parent.iterdir())))


def _raced(job: Job) -> None:
    """Faithful, while another program creates the output path."""
    _faithful(job)
    (job.output.parent / "out.dcm").write_bytes(b"another program's file")


def _failing(job: Job) -> None:
    from dicom_hub.contract.errors import ErrorCode, HubError

    raise HubError(ErrorCode.BACKEND_ERROR, f"could not write {job.output}", f"check {job.output.name}")


WRITERS = {
    "truncated": _truncated,
    "wrong-syntax": _wrong_syntax,
    "new-uid": _new_uid,
    "changed-element": _changed_element,
    "short-pixels": _short_pixels,
    "unpacked-one-bit": _unpacked_one_bit,
    "bad-fragments": _bad_fragments,
    "modified-and-more": _modified_and_more,
    "reformatted-decimals": _reformatted_decimals,
    "faithful": _faithful,
    "watched": _watched,
    "raced": _raced,
    "failing": _failing,
}


class BrokenWriter(Adapter):
    """Serves transcode by writing whatever `behaviour` says, and claims success."""

    name = "broken"
    language = "python"
    toolkit = "broken"
    behaviour = "faithful"

    def probe(self) -> Availability:
        return Availability(True, "1.0")

    def declare_ops(self):
        stubs = {op: Unsupported(f"broken does not implement {op!r}") for op in load_catalog()}
        return {**stubs, "transcode": supports("transfer_syntax", handler=self.write), "modify_tags": supports("set", handler=self.write)}

    def write(self, job: Job) -> Outcome:
        WRITERS[self.behaviour](job)
        return Outcome(output_files=[str(job.output)])


@pytest.fixture
def broken(register_adapter):
    return register_adapter("broken", f"{__name__}:BrokenWriter")


@pytest.mark.parametrize(
    ("behaviour", "sample", "reason"),
    [
        ("truncated", "CT_small.dcm", "truncated"),
        ("wrong-syntax", "CT_small.dcm", "not the requested 1.2.840.10008.1.2 "),
        ("new-uid", "CT_small.dcm", "SOP Instance UID"),
        ("changed-element", "CT_small.dcm", "PixelSpacing changed"),
        ("short-pixels", "CT_small.dcm", "Pixel Data holds"),
        ("unpacked-one-bit", "liver_1frame.dcm", "Pixel Data holds 262144 bytes"),
    ],
)
def test_a_broken_output_is_refused_and_removed(broken, tmp_path, behaviour, sample, reason):
    broken.behaviour = behaviour
    out = tmp_path / "out.dcm"
    data = expect_error(backend_request("broken", "transcode", f"sample:{sample}", out, transfer_syntax="implicit"), "backend_error")
    assert reason in data["error"]["message"]
    assert "fails verification" in data["error"]["message"]
    assert not out.exists()


@pytest.mark.parametrize("behaviour", ["truncated", "new-uid"])
def test_a_refused_overwrite_puts_the_previous_file_back(broken, tmp_path, behaviour):
    """With overwrite: true a refused answer must not have cost the user the file it would
    have replaced."""
    broken.behaviour = behaviour
    out = tmp_path / "out.dcm"
    previous = b"the file the user had before" * 100
    out.write_bytes(previous)
    out.chmod(0o640)
    data = expect_error(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="implicit", overwrite=True), "backend_error")
    assert "fails verification" in data["error"]["message"]
    assert out.read_bytes() == previous and out.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.dcm"], "no copy is left beside it"


def test_an_accepted_overwrite_replaces_the_file_and_leaves_no_copy(broken, tmp_path):
    broken.behaviour = "faithful"
    out = tmp_path / "out.dcm"
    out.write_bytes(b"old")
    expect_ok(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="implicit", overwrite=True))
    assert dcmread(out).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.dcm"]


def test_the_backend_writes_beside_the_output_and_only_a_verified_file_takes_its_name(broken, tmp_path):
    """Until the check passes the output path does not exist: a process killed in between leaves
    no unverified file there, and a reader never sees one that is then taken back."""
    broken.behaviour = "watched"
    SEEN.clear()
    out = tmp_path / "out.dcm"
    data = expect_ok(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="implicit"))
    (written, folder_then), = SEEN
    assert written.parent == tmp_path and written.name.startswith(".out.dcm.") and written.suffix == ".dcm"
    assert folder_then == [written.name], "nothing at the output path while the backend ran"
    assert data["output_files"] == [str(out)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.dcm"]
    assert dcmread(out).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian


def test_an_overwrite_refused_by_the_check_never_touched_the_old_file(broken, tmp_path):
    broken.behaviour = "truncated"
    out = tmp_path / "out.dcm"
    out.write_bytes(b"old")
    inode = out.stat().st_ino
    expect_error(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="implicit", overwrite=True), "backend_error")
    assert out.stat().st_ino == inode and out.read_bytes() == b"old"


def test_a_file_that_appears_at_the_output_meanwhile_is_not_replaced(broken, tmp_path):
    broken.behaviour = "raced"
    out = tmp_path / "out.dcm"
    data = expect_error(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="implicit"), "output_exists")
    assert str(out) in data["error"]["message"]
    assert out.read_bytes() == b"another program's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.dcm"]


@pytest.mark.parametrize("behaviour", ["failing", "truncated"])
def test_errors_name_the_output_not_the_staging_file(broken, tmp_path, behaviour):
    broken.behaviour = behaviour
    out = tmp_path / "out.dcm"
    data = expect_error(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="implicit"), "backend_error")
    error = data["error"]["message"] + (data["error"]["hint"] or "")
    assert "out.dcm" in error and ".staged" not in error
    assert list(tmp_path.iterdir()) == []


def test_bad_fragments_are_refused(broken, tmp_path):
    broken.behaviour = "bad-fragments"
    out = tmp_path / "out.dcm"
    data = expect_error(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="rle"), "backend_error")
    assert "1 fragment(s) for 2 frame(s)" in data["error"]["message"]
    assert not out.exists()


def test_a_faithful_output_passes(broken, tmp_path):
    broken.behaviour = "faithful"
    out = tmp_path / "out.dcm"
    expect_ok(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="implicit"))
    assert dcmread(out).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian


def test_modify_tags_may_change_only_what_it_was_asked(broken, tmp_path):
    broken.behaviour = "modified-and-more"
    out = tmp_path / "out.dcm"
    data = expect_error(backend_request("broken", "modify_tags", "sample:CT_small.dcm", out, set={"PatientName": "Doe^Jane"}), "backend_error")
    assert "StudyDescription changed" in data["error"]["message"] and "PatientName" not in data["error"]["message"]
    assert not out.exists()


def test_decimal_strings_written_with_other_digits_are_not_a_change(broken, tmp_path):
    broken.behaviour = "reformatted-decimals"
    out = tmp_path / "out.dcm"
    expect_ok(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="implicit"))
    written, original = dcmread(out).PixelSpacing, dcmread(get_testdata_file("CT_small.dcm")).PixelSpacing
    assert [float(v) for v in written] != [float(v) for v in original]  # other digits, the same number to 1e-12


def test_verify_option_is_the_dispatchers(broken, tmp_path):
    """`verify` is validated by the catalog and never reaches a backend (which would refuse it)."""
    broken.behaviour = "faithful"
    out = tmp_path / "out.dcm"
    expect_ok(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="implicit", verify="pixels"))
    expect_error(backend_request("broken", "transcode", "sample:CT_small.dcm", tmp_path / "o2.dcm", transfer_syntax="implicit", verify="none"), "invalid_request")


def test_fragment_checks():
    ok = encapsulate([b"\x01\x02", b"\x03\x04"], has_bot=True)
    assert fragments_problem(ok, 2) is None
    assert "fragment(s) for 3 frame(s)" in fragments_problem(ok, 3)
    assert "where an item (FFFE,E000) belongs" in fragments_problem(b"\x10\x00\x10\x00" + ok[4:], 2)
    assert "declares" in fragments_problem(ok[:-1], 2)


# -- real backends, real files --------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["python", "dcmtk", "gdcm"])
def test_real_lossless_transcodes_pass_at_pixel_level(backend, tmp_path):
    out = tmp_path / "rle.dcm"
    data = expect_ok(backend_request(backend, "transcode", "sample:MR_small.dcm", out, transfer_syntax="rle", verify="pixels"))
    assert data["output_files"] == [str(out)]
    assert dcmread(out).SOPInstanceUID == dcmread(get_testdata_file("MR_small.dcm")).SOPInstanceUID


def test_verify_file_for_batch_callers(tmp_path):
    """The per-file entry point batch ops call: a decompressed copy keeps identity and pixels."""
    source = Path(get_testdata_file("MR_small_RLE.dcm"))
    ds = dcmread(source)
    ds.decompress(generate_instance_uid=False)
    good = tmp_path / "good.dcm"
    _write(ds, good)
    assert verify_file(good, source=source, transfer_syntax=ExplicitVRLittleEndian, lossless=True, level="pixels") is None
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    bad = tmp_path / "bad.dcm"
    _write(ds, bad)
    assert "SOP Instance UID" in verify_file(bad, source=source, transfer_syntax=ExplicitVRLittleEndian)
    assert bad.exists()  # the caller decides


def test_pixel_level_catches_changed_values(tmp_path):
    source = Path(get_testdata_file("MR_small.dcm"))
    ds = dcmread(source)
    arr = ds.pixel_array.copy()
    arr[0, 0] += 1
    ds.PixelData = arr.tobytes()
    out = tmp_path / "changed.dcm"
    _write(ds, out)
    assert verify_file(out, source=source, level="structure") is None  # structure alone cannot see it
    assert "1 decoded pixel value(s) differ" in verify_file(out, source=source, lossless=True, level="pixels")


@pytest.mark.parametrize("backend", ["python", "dcmtk", "gdcm"])
def test_real_modify_tags_and_anonymize_pass_at_pixel_level(backend, tmp_path):
    edited = tmp_path / "edited.dcm"
    expect_ok(backend_request(backend, "modify_tags", "sample:CT_small.dcm", edited, set={"PatientName": "Doe^Jane"}, verify="pixels"))
    assert dcmread(edited).PatientName == "Doe^Jane"
    anonymized = tmp_path / "anon.dcm"
    expect_ok(backend_request(backend, "anonymize", "sample:CT_small.dcm", anonymized, verify="pixels"))
    assert dcmread(anonymized).PatientName != dcmread(get_testdata_file("CT_small.dcm")).PatientName


def test_a_target_outside_the_table_never_reaches_a_third_party_backend(broken, tmp_path):
    """The contract's one transfer-syntax table refuses it before any backend runs (JPEG Process 14 is read only)."""
    broken.behaviour = "faithful"  # would write Implicit VR Little Endian
    out = tmp_path / "out.dcm"
    data = expect_error(backend_request("broken", "transcode", "sample:CT_small.dcm", out, transfer_syntax="1.2.840.10008.1.2.4.57"), "invalid_request")
    assert "read only" in data["error"]["message"]
    assert not out.exists()


@pytest.mark.parametrize("backend", ["dcmtk", "gdcm"])
def test_lossy_input_decoded_by_another_decoder_passes_within_its_rounding(backend, tmp_path):
    """JPGExtended.dcm (12-bit lossy JPEG): libjpeg and pydicom's decoder differ by 1 on some pixels."""
    out = tmp_path / "plain.dcm"
    expect_ok(backend_request(backend, "transcode", "sample:JPGExtended.dcm", out, transfer_syntax="explicit", verify="pixels"))
    difference = abs(dcmread(out).pixel_array.astype(int) - dcmread(get_testdata_file("JPGExtended.dcm")).pixel_array.astype(int))
    assert difference.max() == 1  # the rounding the check allows is really there


def test_lossy_input_beyond_rounding_is_refused(tmp_path):
    source = Path(get_testdata_file("JPGExtended.dcm"))
    ds = dcmread(source)
    arr = ds.pixel_array.copy()
    arr[5, 5] += 2
    ds.decompress(generate_instance_uid=False)
    ds.PixelData = arr.tobytes()
    out = tmp_path / "plain.dcm"
    _write(ds, out)
    assert "by more than the 1" in verify_file(out, source=source, lossless=True, level="pixels")
