"""The files of the corpus matrix: pydicom-data's 68 real-world files (`pd:<name>`) and a compact
generated set (`gen:<image>_<syntax>.dcm`) where the real files are thin.

The generated set crosses bit depths (8, 12 in 16, 16), signedness, monochrome/RGB and
multi-frame with every transfer syntax the Python backend writes losslessly; each file is
written by the Python backend's own `transcode` from a native original built here, so a
codec that cannot encode a combination simply leaves that file out (recorded nowhere).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from conftest import run_request

# (name, samples per pixel, bits allocated, bits stored, signed, frames)
IMAGES = (
    ("mono8u", 1, 8, 8, False, 1),
    ("mono12u", 1, 16, 12, False, 1),
    ("mono16s", 1, 16, 16, True, 1),
    ("mono16u_3f", 1, 16, 16, False, 3),
    ("rgb8u", 3, 8, 8, False, 1),
    ("rgb8u_2f", 3, 8, 8, False, 2),
)
SYNTAXES = ("explicit", "implicit", "deflated", "rle", "jpeg_lossless", "jpegls", "j2k")
ROWS, COLUMNS = 40, 56  # not square (a swapped axis shows); J2K needs >= 32 for its 6 resolution levels
ROOT = "1.2.826.0.1.3680043.10.1234.77."


def pydicom_data_files() -> dict[str, Path]:
    """pydicom-data's files by `pd:<name>` (empty when the package is not installed)."""
    try:
        import data_store  # the import name of the pydicom-data distribution
    except ImportError:
        return {}
    folder = Path(data_store.__file__).parent / "data"
    return {f"pd:{p.name}": p for p in sorted(folder.glob("*.dcm"))}


def original(name: str, samples: int, allocated: int, stored: int, signed: bool, frames: int):
    """A native Explicit VR Little Endian data set with a deterministic ramp plus noise over the full range."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    rng = np.random.default_rng(len(name) * 1000 + allocated + stored)
    low, high = (-(1 << (stored - 1)), (1 << (stored - 1)) - 1) if signed else (0, (1 << stored) - 1)
    shape = (frames, ROWS, COLUMNS, samples)
    ramp = np.linspace(low, high, num=int(np.prod(shape))).reshape(shape)
    noise = rng.integers(-(high - low) // 16, (high - low) // 16 + 1, size=shape)
    dtype = {(8, False): np.uint8, (16, False): np.uint16, (16, True): np.int16}[(allocated, signed)]
    pixels = np.clip(ramp + noise, low, high).astype(dtype)
    uid = f"{ROOT}{sum(map(ord, name))}.{allocated}{stored}{frames}"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = f"{ROOT}1"
    ds.SeriesInstanceUID = f"{ROOT}2"
    ds.PatientName = "Corpus^Generated"
    ds.PatientID = "CORPUS-GEN"
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.Rows, ds.Columns = ROWS, COLUMNS
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = allocated, stored, stored - 1
    ds.PixelRepresentation = int(signed)
    data = pixels if samples == 3 else pixels[..., 0]
    ds.PixelData = (data[0] if frames == 1 else data).tobytes()
    ds["PixelData"].VR = "OB" if allocated == 8 else "OW"
    return ds


ONE_BIT_RLE = "gen:liver_1bit_rle.dcm"
GENERATED_NAMES = (*(f"gen:{image[0]}_{syntax}.dcm" for image in IMAGES for syntax in SYNTAXES), ONE_BIT_RLE)
# The default run's share of the generated set: every syntax with two images (rotating), so every
# image and every syntax appears; DICOM_HUB_CORPUS_FULL=1 runs the whole cross.
DEFAULT_GENERATED = frozenset(
    {ONE_BIT_RLE}
    | {f"gen:{IMAGES[i % len(IMAGES)][0]}_{syntax}.dcm" for i, syntax in enumerate(SYNTAXES)}
    | {f"gen:{IMAGES[(i + 3) % len(IMAGES)][0]}_{syntax}.dcm" for i, syntax in enumerate(SYNTAXES)}
)


@cache
def generated_file(folder: Path, name: str) -> tuple[Path | None, str]:
    """Write one generated file into `folder`: its path (None when the Python backend refused
    to encode it) and the state of that encoding (`ok` or the error code)."""
    if name == ONE_BIT_RLE:
        return one_bit_rle(folder), "ok"
    image, syntax = name.removeprefix("gen:").removesuffix(".dcm").rsplit("_", 1)
    if syntax == "lossless":  # jpeg_lossless
        image, syntax = image.rsplit("_", 1)[0], "jpeg_lossless"
    spec = next(spec for spec in IMAGES if spec[0] == image)
    source = folder / f"{image}_explicit.dcm"
    if not source.exists():
        original(*spec).save_as(source, enforce_file_format=True)
    if syntax == "explicit":
        return source, "ok"
    target = folder / f"{image}_{syntax}.dcm"
    response = run_request({"op": "transcode", "backend": "python", "input": str(source), "output": str(target), "options": {"transfer_syntax": syntax}})
    return (target, "ok") if response["ok"] else (None, response["error"]["code"])


def _packbits_literal(data: bytes) -> bytes:
    """One RLE segment (PS3.5 G.3.1) of literal runs only: valid for any decoder."""
    out = bytearray()
    for start in range(0, len(data), 128):
        chunk = data[start : start + 128]
        out += bytes([len(chunk) - 1]) + chunk
    return bytes(out + (b"\x00" if len(out) % 2 else b""))


def one_bit_rle(folder: Path) -> Path:
    """pydicom-data's 1-bit liver segmentation, RLE-encoded (one segment of packed bytes per frame,
    as pydicom's own `liver_rle.dcm` is): no backend here writes 1-bit RLE."""
    import struct

    from pydicom import dcmread
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    target = folder / "liver_1bit_rle.dcm"
    if target.exists():
        return target
    ds = dcmread(pydicom_data_files()["pd:liver.dcm"])
    frame_bytes = ds.Rows * ds.Columns // 8
    frames = []
    for index in range(int(ds.NumberOfFrames)):
        segment = _packbits_literal(ds.PixelData[index * frame_bytes : (index + 1) * frame_bytes])
        header = struct.pack("<16I", 1, 64, *([0] * 14))
        frames.append(header + segment)
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.save_as(target, enforce_file_format=True)
    return target
