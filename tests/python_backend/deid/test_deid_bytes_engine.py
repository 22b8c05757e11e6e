"""The bytes engine (the common case, without pydicom) against the pydicom engine, its oracle:
same output bytes and same mapping entries for every file it takes; every other file declined.

Files: pydicom's bundled test files and the CT series samples; none of them made here."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from dicom_hub.contract.dicom.deid.profile import profile_for
from dicom_hub.contract.dicom.deid.pseudonyms import Pseudonymizer
from dicom_hub.contract.dicom.pydicom_tables import (
    IMPLEMENTATION_UID,
    entry,
    pydicom_version,
    tags_by_keyword,
)
from dicom_hub.contract.errors import HubError
from dicom_hub.contract.files import write_file_atomically
from dicom_hub.python_backend.deid.bytes_engine import _dummy, anonymize_bytes
from dicom_hub.python_backend.deid.engine import DUMMY_BY_VR
from dicom_hub.python_backend.deid.ops import Settings, _anonymize_dataset, anonymize_file

KEY = b"test-key-0123456789abcdef"


def _test_files() -> list[Path]:
    """pydicom's bundled test files (the folder itself: listing them through pydicom.data may
    try to download more)."""
    from pydicom.data import get_testdata_file

    folder = Path(get_testdata_file("CT_small.dcm")).parent
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith((".py", ".pyc", ".json", ".txt", ".gz", ".bz2", ".zip")))


def _settings(options: tuple[str, ...]) -> Settings:
    return Settings(key=KEY, profile_options=options, patient_prefix="ANON", allow_burned_in=False, overwrite=True, collect_mapping=True)


@pytest.mark.parametrize(
    "options",
    [(), ("retain_uids", "retain_device_identity"), ("retain_institution_identity", "retain_patient_characteristics", "retain_full_dates"), ("clean_descriptors", "clean_graphics")],
    ids=["basic", "uids-device", "institution-patient-dates", "clean"],
)
def test_bytes_engine_writes_what_the_pydicom_engine_writes(options: tuple[str, ...], tmp_path: Path) -> None:
    settings = _settings(options)
    taken = 0
    for path in _test_files():
        fast = anonymize_bytes(path.read_bytes(), profile_for(options), Pseudonymizer(KEY, "ANON"), allow_burned_in=False)
        if fast is None:
            continue
        taken += 1
        target = tmp_path / "oracle.dcm"
        try:
            mapping = _anonymize_dataset(path, target, settings, Pseudonymizer(KEY, "ANON"))
        except HubError as err:
            pytest.fail(f"{path.name}: the bytes engine wrote a file the pydicom engine refuses ({err.code.value}: {err.message})")
        chunks, fast_mapping = fast
        assert b"".join(chunks) == target.read_bytes(), path.name
        assert fast_mapping == mapping, path.name
    assert taken >= (20 if "clean_descriptors" in options else 50), taken  # not a vacuous pass


def test_bytes_engine_declines_what_it_does_not_handle(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    ct = Path(get_testdata_file("CT_small.dcm"))
    profile, data = profile_for(()), ct.read_bytes()
    assert anonymize_bytes(data, profile, Pseudonymizer(KEY), False) is not None
    assert anonymize_bytes(data[: len(data) - 100], profile, Pseudonymizer(KEY), False) is None  # truncated
    assert anonymize_bytes(data[128:], profile, Pseudonymizer(KEY), False) is None  # no preamble
    assert anonymize_bytes(data, profile_for(("retain_modified_dates",)), Pseudonymizer(KEY), False) is None
    assert anonymize_bytes(data, profile_for(("retain_safe_private",)), Pseudonymizer(KEY), False) is None
    big_endian = Path(get_testdata_file("MR_small_bigendian.dcm")).read_bytes()
    assert anonymize_bytes(big_endian, profile, Pseudonymizer(KEY), False) is None
    # A declined file still gets the pydicom engine's answer: the truncated one is a decode error.
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(data[: len(data) - 100])
    with pytest.raises(HubError) as caught:
        anonymize_file(truncated, tmp_path / "out.dcm", _settings(()))
    assert caught.value.code.value == "decode_error"
    assert not (tmp_path / "out.dcm").exists()


def test_dummy_values_are_encoded_as_pydicom_encodes_them() -> None:
    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    checked = 0
    for vr, value in DUMMY_BY_VR.items():
        ours = _dummy(vr)
        if ours is None:
            continue
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, True
        write_data_element(fp, DataElement(0x00091001, vr, value))
        assert ours == fp.getvalue()[8:], vr  # after the implicit tag and length
        checked += 1
    assert checked >= 20


def test_pydicom_tables_answer_as_pydicom_does() -> None:
    import pydicom
    from pydicom._dicom_dict import RepeatersDictionary
    from pydicom.datadict import get_entry, keyword_dict
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    tags = [*keyword_dict.values(), 0x60000010, 0x60223000, 0x50040010, 0x10001005, 0x00090010, 0x7FE10010, 0x12345678]
    for tag in tags:
        try:
            expected = get_entry(tag)
        except KeyError:
            expected = None
        assert entry(tag) == expected, hex(tag)
    by_keyword = {value[4]: int(mask.replace("x", "0"), 16) for mask, value in RepeatersDictionary.items()} | keyword_dict
    assert tags_by_keyword() == by_keyword
    assert pydicom_version() == pydicom.__version__
    assert IMPLEMENTATION_UID == PYDICOM_IMPLEMENTATION_UID


def test_a_batch_file_is_anonymized_without_importing_pydicom(tmp_path: Path) -> None:
    """The start-up lever: `import pydicom` costs ~0.3 s a run, and the bytes engine needs none of it."""
    from pydicom.data import get_testdata_file

    script = (
        "import sys; from pathlib import Path\n"
        "from dicom_hub.python_backend.deid.ops import Settings, anonymize_file\n"
        "anonymize_file(Path(sys.argv[1]), Path(sys.argv[2]), Settings(b'k' * 20, (), 'ANON', False, False, False))\n"
        "print('pydicom' in sys.modules)\n"
    )
    out = tmp_path / "out.dcm"
    done = subprocess.run([sys.executable, "-c", script, get_testdata_file("CT_small.dcm"), str(out)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert out.read_bytes()[128:132] == b"DICM"


def test_write_file_atomically_writes_pieces_in_order_and_never_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.dcm"
    pieces = [b"head", memoryview(b"0123456789" * 1000)[5:], bytearray(b"tail")]
    write_file_atomically(target, pieces)
    assert target.read_bytes() == b"head" + (b"0123456789" * 1000)[5:] + b"tail"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(HubError) as caught:
        write_file_atomically(target, [b"other"])
    assert caught.value.code.value == "output_exists"
    write_file_atomically(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(HubError) as caught:
        write_file_atomically(blocker / "b.dcm", [b"data"])
    assert caught.value.code.value == "output_error"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.dcm", "file", "sub"]  # no temp file left


@pytest.mark.parametrize("overwrite", [False, True])
def test_write_file_atomically_refuses_a_fifo_in_place_of_the_output(tmp_path: Path, overwrite: bool) -> None:
    """A FIFO where the output goes is refused as such (not replaced, not reported as a mere
    existing output), and nothing is left beside it."""
    fifo = tmp_path / "a.dcm"
    os.mkfifo(fifo)
    with pytest.raises(HubError) as caught:
        write_file_atomically(fifo, [b"data"], overwrite=overwrite)
    assert caught.value.code.value == "invalid_request" and "FIFO" in caught.value.message
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["a.dcm"]


def test_bytes_engine_on_damaged_files_declines_or_writes_what_pydicom_writes(tmp_path: Path) -> None:
    """Bytes flipped, cut, inserted: the bytes engine never fails, and a file it takes is one the
    pydicom engine takes too, with the same output."""
    import logging
    import random
    import warnings

    from pydicom.data import get_testdata_file

    sources = [Path(get_testdata_file(name)).read_bytes() for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm")]
    rng = random.Random(21)
    settings, source, target = _settings(()), tmp_path / "in.dcm", tmp_path / "out.dcm"
    taken = 0
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(300):
                data = bytearray(rng.choice(sources))
                for _ in range(rng.randint(1, 3)):
                    at = rng.randrange(128, len(data))
                    kind = rng.random()
                    if kind < 0.6:
                        data[at] = rng.randrange(256)
                    elif kind < 0.8:
                        del data[at : at + rng.randint(1, 16)]
                    else:
                        data = data[:at]
                fast = anonymize_bytes(bytes(data), profile_for(()), Pseudonymizer(KEY, "ANON"), allow_burned_in=False)
                if fast is None:
                    continue
                taken += 1
                source.write_bytes(data)
                mapping = _anonymize_dataset(source, target, settings, Pseudonymizer(KEY, "ANON"))
                assert b"".join(fast[0]) == target.read_bytes()
                assert fast[1] == mapping
    finally:
        logging.disable(logging.NOTSET)
    assert taken >= 20, taken
