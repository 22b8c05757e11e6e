"""Seeded fuzz cases: corrupt DICOM files made from pydicom's bundled files and from files the
python backend writes in every transfer syntax it can write.

Every case is rebuilt from (seed, source, mutation) alone, and its `describe()` says exactly
which bytes changed, so a failure is reproduced by running that one request on that one file:

    .venv/bin/python tests/fuzz/fuzz_cases.py --seed 15 --case 37 --out case.dcm
"""

from __future__ import annotations

import random
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydicom import config, dcmread
from pydicom.data import get_testdata_file

# Bundled files of every kind: native/compressed, little/big endian, implicit, no meta, deflated,
# multi-frame, sequences, private and UN sequences, SR, RT, waveform.
BUNDLED = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
    "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "JPEG2000.dcm", "JPEG-lossy.dcm",
    "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_small_odd.dcm", "SC_ybr_full_422_uncompressed.dcm",
    "image_dfl.dcm", "no_meta.dcm", "ExplVR_BigEndNoMeta.dcm", "rtplan.dcm", "rtstruct.dcm", "test-SR.dcm",
    "nested_priv_SQ.dcm", "UN_sequence.dcm", "waveform_ecg.dcm", "examples_palette.dcm", "liver_1frame.dcm",
)  # fmt: skip
# Transfer syntaxes the python backend writes (big endian is read-only; HTJ2K has no encoder), and a
# source each can hold.
GENERATED = {
    "explicit": "MR_small.dcm", "implicit": "MR_small.dcm", "deflated": "MR_small.dcm", "rle": "MR_small.dcm",
    "jpeg": "SC_rgb_rle.dcm", "jpeg_lossless": "MR_small.dcm", "jpegls": "MR_small.dcm", "jpegls_near": "MR_small.dcm",
    "j2k": "MR_small.dcm", "j2k_lossy": "MR_small.dcm",
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One corrupt file: where it came from and what was done to it."""

    index: int
    source: str
    mutation: str
    data: bytes

    def describe(self, seed: int) -> str:
        return f"seed {seed} case {self.index}: {self.source} with {self.mutation}"


# -- byte-level mutations ----------------------------------------------------------------------------


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    cut = rng.randrange(1, len(data))
    return data[:cut], f"truncation at byte {cut} of {len(data)}"


def flip(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    changes = []
    for _ in range(rng.randint(1, 4)):
        # Most of a file is pixel data; half the flips land in the first 2 KB (meta and header).
        pos = rng.randrange(min(len(out), 2048)) if rng.random() < 0.5 else rng.randrange(len(out))
        out[pos] = rng.randrange(256)
        changes.append(f"{pos}=0x{out[pos]:02x}")
    return bytes(out), "bytes set " + ", ".join(changes)


# -- crafted headers (explicit VR little endian sources) -------------------------------------------


def _rewrite(data: bytes, change: Callable) -> bytes:
    """Read with pydicom, change the data set, write it back without validation."""
    from io import BytesIO

    ds = dcmread(BytesIO(data), force=True)
    change(ds)
    out = BytesIO()
    with config.disable_value_validation():
        ds.save_as(out, enforce_file_format=False)
    return out.getvalue()


def _value_offset(data: bytes, tag: int) -> tuple[int, int]:
    """(offset of the value, declared length) of a top-level element of an explicit VR LE file."""
    from io import BytesIO

    ds = dcmread(BytesIO(data), force=True, defer_size=0)
    raw = ds.get_item(tag, keep_deferred=True)
    if raw is None or raw.value_tell is None:
        raise LookupError(tag)
    return raw.value_tell, raw.length


def huge_size(data: bytes) -> tuple[bytes, str]:
    def change(ds):
        ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 1000

    return _rewrite(data, change), "Rows = Columns = 65535, Number of Frames = 1000"


def bad_number_of_frames(data: bytes) -> tuple[bytes, str]:
    def change(ds):
        ds.NumberOfFrames = "77"

    data = _rewrite(data, change)
    offset, _ = _value_offset(data, 0x00280008)
    return data[:offset] + b"1A" + data[offset + 2 :], "Number of Frames = '1A'"


def negative_size(data: bytes) -> tuple[bytes, str]:
    def change(ds):
        ds.NumberOfFrames = "-5"
        ds.BitsAllocated = 0

    return _rewrite(data, change), "Number of Frames = -5, Bits Allocated = 0"


def bad_vr(data: bytes, tag: int, vr: bytes) -> tuple[bytes, str]:
    """Overwrite the VR of a short-VR element (tag, VR, 2-byte length, value)."""
    offset, _ = _value_offset(data, tag)
    out = bytearray(data)
    out[offset - 4 : offset - 2] = vr
    return bytes(out), f"VR of ({tag >> 16:04X},{tag & 0xFFFF:04X}) set to {vr!r}"


def unknown_syntax(data: bytes) -> tuple[bytes, str]:
    header = data.index(b"\x02\x00\x10\x00UI")  # the meta group is always explicit VR little endian
    (length,) = struct.unpack("<H", data[header + 6 : header + 8])
    offset = header + 8
    old = data[offset : offset + length]
    new = (b"1.2.3.999." + b"9" * length)[: length - 1] + (b"\0" if old.endswith(b"\0") else b"9")
    return data[:offset] + new + data[offset + length :], f"Transfer Syntax UID {old.rstrip(bytes(1)).decode()} -> {new.rstrip(bytes(1)).decode()}"


def odd_length(data: bytes) -> tuple[bytes, str]:
    offset, _ = _value_offset(data, 0x00280010)  # Rows, US: a 2-byte length field before the value
    out = bytearray(data)
    out[offset - 2 : offset] = struct.pack("<H", 3)
    return bytes(out), "length of (0028,0010) Rows (US) set to 3"


_LONG_VRS = (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV")


def huge_length(data: bytes, tag: int) -> tuple[bytes, str]:
    """Declare a length far beyond the end of the file (0xFFFF, or 0xFFFFFFFF: undefined)."""
    offset, length = _value_offset(data, tag)
    out = bytearray(data)
    long = data[offset - 8 : offset - 6] in _LONG_VRS and data[offset - 6 : offset - 4] == b"\0\0"
    value = (0xFFFFFFF0 if length == 0xFFFFFFFF else 0xFFFFFFFF) if long else 0xFFFF
    out[offset - (4 if long else 2) : offset] = struct.pack("<I" if long else "<H", value)
    return bytes(out), f"length of ({tag >> 16:04X},{tag & 0xFFFF:04X}) set to 0x{value:X}"


def undelimited_sequence(data: bytes) -> tuple[bytes, str]:
    """A sequence and an item of undefined length, and the file ends before any delimiter."""
    sq = struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    elem = struct.pack("<HH2sH", 0x0008, 0x1150, b"UI", 6) + b"1.2.3\0"
    return data + sq + item + elem, "an undefined-length sequence without delimiters appended"


def deep_nesting(data: bytes, depth: int) -> tuple[bytes, str]:
    """`depth` nested undefined-length sequences (deeper than Python's recursion limit)."""
    opening = struct.pack("<HH2sHI", 0xFFFA, 0xFFFA, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return data + opening * depth + closing * depth, f"{depth} nested sequences appended"


def crafted(data_of: Callable[[str], bytes]) -> list[tuple[str, bytes, str]]:
    """(source, data, mutation) for every crafted header, on a native and a compressed image."""
    out: list[tuple[str, bytes, str]] = []
    for name in ("CT_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"):
        data = data_of(name)
        for make in (huge_size, bad_number_of_frames, negative_size, unknown_syntax, odd_length, undelimited_sequence):
            out.append((name, *make(data)))
        out.append((name, *deep_nesting(data, 3000)))
        out.append((name, *bad_vr(data, 0x00100010, b"ZZ")))  # Patient's Name
        out.append((name, *bad_vr(data, 0x00280010, b"\x00\x01")))  # Rows
        out.append((name, *huge_length(data, 0x00100010)))
        out.append((name, *huge_length(data, 0x7FE00010)))
    # Found by earlier fuzz runs: pylibjpeg-rle panics (Rust) on this one byte.
    rle = bytearray(data_of("MR_small_RLE.dcm"))
    rle[1544] = 0x94
    out.append(("MR_small_RLE.dcm", bytes(rle), "bytes set 1544=0x94"))
    return out


# -- the case list ---------------------------------------------------------------------------------


def bundled_data(name: str) -> bytes:
    return Path(get_testdata_file(name, download=False)).read_bytes()


def build_cases(seed: int, sources: dict[str, bytes], random_cases: int) -> list[Case]:
    """Crafted cases first (always all of them), then `random_cases` truncations and byte flips."""
    rng = random.Random(seed)
    cases = [Case(i, source, mutation, data) for i, (source, data, mutation) in enumerate(crafted(lambda n: sources[n]))]
    names = sorted(sources)
    for _ in range(random_cases):
        name = rng.choice(names)
        data, mutation = (truncate if rng.random() < 0.3 else flip)(sources[name], rng)
        cases.append(Case(len(cases), name, mutation, data))
    return cases


def bundled_sources() -> dict[str, bytes]:
    return {name: bundled_data(name) for name in BUNDLED}


def main(argv: list[str]) -> int:
    """Write one case to a file (the generated sources need `--generated FOLDER` from a fuzz run)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--case", type=int, required=True)
    parser.add_argument("--random-cases", type=int, default=2000)
    parser.add_argument("--generated", type=Path, help="folder of the generated sources (gen_<alias>.dcm)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    sources = bundled_sources()
    if args.generated:
        sources |= {p.name: p.read_bytes() for p in sorted(args.generated.glob("gen_*.dcm"))}
    case = build_cases(args.seed, sources, args.random_cases)[args.case]
    args.out.write_bytes(case.data)
    print(case.describe(args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
