"""`transcode`: rewrite a file in another transfer syntax.

Compressed input is decompressed with pydicom's decoders; the target is encoded with pydicom's
encoders (RLE, JPEG-LS via pyjpegls, JPEG 2000 via pylibjpeg-openjpeg) or, where pydicom 3 has
none, with python-gdcm (JPEG baseline, JPEG lossless). Lossy targets record Lossy Image
Compression, its ratio and method, and get a new SOP Instance UID unless told otherwise.
The written file is read back to confirm its transfer syntax.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.part10 import read_dataset
from dicom_hub.contract.dicom.pixels.decode import (
    CODECS_HINT,
    codec_package,
    decode,
    decode_failure,
    known_transfer_syntax,
    plugin_order,
    require_pixels,
    transfer_syntax,
    with_decoders,
)
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome
from dicom_hub.contract.pixel_size import check_dataset

from .gdcm_jpeg import encode_with_gdcm
from .syntaxes import BY_NAME as TARGETS_BY_ALIAS
from .syntaxes import Target, check_target_options, resolve_target

if TYPE_CHECKING:
    from pydicom import Dataset
    from pydicom.uid import UID

# Byte width of the values in binary VRs that need swapping when leaving big endian.
_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def transcode(job: Job) -> Outcome:
    from pydicom.uid import UID

    assert job.output is not None
    target = resolve_target(job.option("transfer_syntax"))
    check_target_options(target, job.options)
    ds = read_dataset(job.input)
    name = job.input.name
    source = known_transfer_syntax(ds, name)
    old_uid = str(ds.get("SOPInstanceUID", ""))
    ratio: float | None = None
    encoder = None
    if source != target.uid:
        to_native_little_endian(ds, name, source)
        if target.compressed:
            ratio, encoder = encode(ds, name, target, job)
            if target.lossy:
                mark_lossy(ds, target, ratio, keep_uid=bool(job.option("keep_sop_instance_uid")))
        else:
            ds.file_meta.TransferSyntaxUID = UID(target.uid)
    write_verified(ds, job, target.uid)
    new_uid = str(ds.get("SOPInstanceUID", ""))
    metadata: dict[str, Any] = {
        "output": str(job.output),
        "transfer_syntax": target.uid,
        "transfer_syntax_name": _name(target.uid),
        "source_transfer_syntax": str(source),
        "changed": source != target.uid,
        "lossy": target.lossy and source != target.uid,
        "compression_ratio": round(ratio, 3) if ratio else None,
        "encoder": encoder,  # "pydicom/<plugin>" or "python-gdcm"
        "sop_instance_uid": new_uid,
        "sop_instance_uid_changed": new_uid != old_uid,
        "photometric_interpretation": ds.get("PhotometricInterpretation"),
        "planar_configuration": ds.get("PlanarConfiguration"),
    }
    return Outcome(metadata=metadata, output_files=[str(job.output)])


def to_native_little_endian(ds: Dataset, name: str, source: UID) -> None:
    """Decompress (colour to RGB, as pydicom does) or byte-swap big endian data, in place.

    Decompressing is lossless: the SOP Instance UID stays (pydicom 3 would draw a new one), and
    1-bit images are packed again, eight pixels a byte, as Bits Allocated 1 requires.
    Every path that decompresses a data set (transcode, batch_decompress, store) goes through here.
    """
    if "PixelData" in ds and source.is_compressed:
        check_dataset(ds, name)
        try:
            with_decoders(source, name, lambda plugin: ds.decompress(as_rgb=True, generate_instance_uid=False, decoding_plugin=plugin), in_process_only=True)
        except HubError as err:
            if err.code != ErrorCode.DECODE_ERROR:
                raise
            _decompress_via_pixel_array(ds, name)
        _pack_single_bits(ds)
    elif not source.is_little_endian:
        _swap_to_little_endian(ds)


def _pack_single_bits(ds: Dataset) -> None:
    """pydicom's decompress() leaves a 1-bit image one byte per pixel while Bits Allocated stays 1,
    a file no reader can decode; pack the pixels as PS3.5 8.1.1 says (the IOD keeps its Bits Allocated)."""
    if int(ds.get("BitsAllocated") or 0) != 1:
        return
    import numpy as np
    from pydicom.pixels.utils import get_expected_length, pack_bits

    unpacked = get_expected_length(ds, unit="pixels")
    if len(ds.PixelData) < unpacked:
        return  # already packed
    pixels = np.frombuffer(ds.PixelData, dtype=np.uint8, count=unpacked)
    ds.PixelData = pack_bits(pixels, pad=True)


def _decompress_via_pixel_array(ds: Dataset, name: str) -> None:
    """Fallback when `decompress()` fails but `pixel_array` does not: pydicom 3.0.2's frame
    iterator cannot sign-correct read-only J2K buffers (J2K_pixelrep_mismatch.dcm). A real decoding
    failure still raises here, as `decode_error` or `codec_unavailable`."""
    arr = decode(ds, name)
    photometric = str(ds.PhotometricInterpretation)
    if arr.ndim == (4 if int(ds.get("NumberOfFrames") or 1) > 1 else 3) and photometric.startswith("YBR"):
        photometric = "RGB"  # decode() converted the colour, as decompress() would have
    try:
        ds.set_pixel_data(arr, photometric, int(ds.BitsStored), generate_instance_uid=False)
    except Exception as err:
        raise decode_failure(name, transfer_syntax(ds), err) from None


def _swap_to_little_endian(ds: Dataset) -> None:
    """Big endian -> little endian: binary values (Pixel Data included) are byte-swapped by their width."""
    import numpy as np
    from pydicom.uid import ExplicitVRLittleEndian

    for elem in ds.iterall():
        width = _SWAP_WIDTH.get(str(elem.VR))
        if not width or not isinstance(elem.value, bytes):
            continue
        if elem.tag == 0x7FE00010 and int(ds.get("BitsAllocated") or 16) in (32, 64):
            width = int(ds.BitsAllocated) // 8
        usable = len(elem.value) - len(elem.value) % width
        swapped = np.frombuffer(elem.value[:usable], dtype=f">u{width}").astype(f"<u{width}").tobytes()
        elem.value = swapped + elem.value[usable:]
    implicit, _ = ds.original_encoding
    ds.set_original_encoding(implicit, True, ds.original_character_set)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # what the bytes now are


def encode(ds: Dataset, name: str, target: Target, job: Job) -> tuple[float, str]:
    """Compress `ds`'s native pixel data in place; return the compression ratio and the encoder used."""
    require_pixels(ds, name)
    native_size = len(ds.PixelData)
    arr = decode(ds, name, as_rgb=False)
    if int(ds.get("SamplesPerPixel") or 1) > 1:
        # Compressed colour is always stored pixel-interleaved; 4:2:2 is upsampled when decoded.
        ds.PlanarConfiguration = 0
        if ds.PhotometricInterpretation == "YBR_FULL_422":
            ds.PhotometricInterpretation = "YBR_FULL"
    if target.via_gdcm:
        if target.lossy:
            arr = _baseline_ready(ds, arr)
        encode_with_gdcm(ds, arr, target, int(job.option("quality")))
        encoder = "python-gdcm"
    else:
        encoder = "pydicom/" + _compress_with_pydicom(ds, arr, target, job)
    return native_size / max(len(ds.PixelData), 1), encoder


def _baseline_ready(ds: Dataset, arr):
    """Colour goes into JPEG baseline as YBR_FULL: GDCM does no RGB -> YCbCr transform of its own."""
    from .gdcm_jpeg import check_encodable

    check_encodable(ds, TARGETS_BY_ALIAS["jpeg"])
    if ds.PhotometricInterpretation == "RGB":
        from pydicom.pixels import convert_color_space

        arr = convert_color_space(arr, "RGB", "YBR_FULL", per_frame=arr.ndim == 4)
        ds.PhotometricInterpretation = "YBR_FULL"
    return arr


def _compress_with_pydicom(ds: Dataset, arr, target: Target, job: Job) -> str:
    """Encode with pydicom's encoder for the target; return the plugin that did it."""
    from pydicom.pixels import get_encoder

    try:
        encoder = get_encoder(target.uid)
    except NotImplementedError:
        raise HubError(
            ErrorCode.CODEC_UNAVAILABLE,
            f"no installed encoder writes {_name(target.uid)}: pydicom {_pydicom_version()} has none and no plugin provides one",
            "decoding it works (pylibjpeg-openjpeg); to write JPEG 2000, choose j2k or j2k_lossy",
        ) from None
    if not encoder.is_available:
        raise HubError(
            ErrorCode.CODEC_UNAVAILABLE,
            f"no installed codec can encode {_name(target.uid)}: {'; '.join(encoder.missing_dependencies)}",
            f"{CODECS_HINT} (it provides {codec_package(target.uid)})",
        )
    # Deliberately not GDCM's RLE encoder, which aborts the process on odd image sizes.
    plugin = plugin_order(encoder.available_plugins)[0]
    kwargs: dict[str, Any] = {"encoding_plugin": plugin}
    if target.alias == "jpegls_near":
        kwargs["jls_error"] = int(job.option("near_lossless_error"))
    elif target.lossy:
        kwargs["j2k_cr"] = [float(job.option("compression_ratio"))]
    try:
        ds.compress(target.uid, arr, generate_instance_uid=False, **kwargs)
    except Exception as err:  # profile checks raise ValueError, plugins RuntimeError
        raise HubError(
            ErrorCode.UNSUPPORTED_OPTION,
            f"cannot encode this image as {target.alias}: {' '.join(str(err).split())}",
            "explicit, implicit and deflated take any image; compressed syntaxes limit bit depth and colour (PS3.5 section 8)",
        ) from None
    return plugin


def mark_lossy(ds: Dataset, target: Target, ratio: float, keep_uid: bool) -> None:
    """PS3.3 C.7.6.1.1.5: ratios and methods accumulate over successive lossy steps."""
    from pydicom.uid import generate_uid

    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [*_values(ds.get("LossyImageCompressionRatio")), f"{ratio:.2f}"]
    ds.LossyImageCompressionMethod = [*_values(ds.get("LossyImageCompressionMethod")), target.method]
    if not keep_uid:
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def write_verified(ds: Dataset, job: Job, uid: str) -> None:
    """Write atomically; read the temporary file back and refuse it if its transfer syntax is not `uid`."""
    from pydicom import dcmread
    from pydicom.uid import UID

    assert job.output is not None
    meta = ds.file_meta
    meta.TransferSyntaxUID = UID(uid)
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    with atomic_output(job.output, job.overwrite) as tmp:
        try:
            ds.save_as(tmp, enforce_file_format=True)
        except Exception as err:
            raise HubError(ErrorCode.OUTPUT_ERROR, f"cannot write {job.output.name}: {type(err).__name__}: {err}", "check the data set and the output folder") from None
        written = dcmread(tmp, stop_before_pixels=True).file_meta.get("TransferSyntaxUID")
        if written != uid:
            raise HubError(ErrorCode.OUTPUT_ERROR, f"the written file has transfer syntax {written}, not {uid}", "this is a dicom-hub bug; please report it")


def _values(value: Any) -> list[str]:
    """An element's values as strings, whether it holds none, one or several."""
    if value is None or value == "":
        return []
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return [str(value)]
    return [str(v) for v in value]


def _name(uid: str) -> str:
    from pydicom.uid import UID

    return UID(uid).name


def _pydicom_version() -> str:
    import pydicom

    return pydicom.__version__
