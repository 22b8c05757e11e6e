"""`nifti`: a series as a NIfTI-1 file (nibabel) plus a JSON sidecar.

The voxel layout follows dcm2niix, the reference tool: i = column, j = row counted from the
bottom of the image, k = slice along the normal. qform and sform (code 1, scanner) both carry
the DICOM LPS affine turned into NIfTI's RAS. Voxels are the rescaled values (slope 1, offset 0),
in the smallest type that holds them.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output, check_writable
from dicom_hub.contract.job import Job, Outcome

from ._values import element_value
from .volume import Volume, build_volume, describe, sidecar_path, write_json

if TYPE_CHECKING:
    import numpy as np

LPS_TO_RAS = (-1.0, -1.0, 1.0)
ACQUISITION_KEYWORDS = (
    "Modality", "Manufacturer", "ManufacturerModelName", "SeriesDescription", "ProtocolName", "SeriesNumber",
    "StudyDate", "AcquisitionDate", "AcquisitionTime", "BodyPartExamined", "PatientPosition", "ImageType",
    "SliceThickness", "SpacingBetweenSlices", "KVP", "XRayTubeCurrent", "ConvolutionKernel", "MagneticFieldStrength",
    "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle", "ScanningSequence", "SequenceName", "RescaleType",
)  # fmt: skip


def nifti(job: Job) -> Outcome:
    compressed = job.output_path.name.endswith(".nii.gz")
    if not compressed and job.output_path.suffix != ".nii":
        raise HubError(ErrorCode.INVALID_REQUEST, f"output {job.output_path.name} is neither .nii nor .nii.gz", "name the output <name>.nii or <name>.nii.gz")
    sidecar = sidecar_path(job.output_path) if job.option("sidecar") else None
    if sidecar is not None:
        check_writable(sidecar, job.overwrite)
    try:
        import nibabel
    except ImportError:
        raise HubError(ErrorCode.BACKEND_UNAVAILABLE, "nibabel is not installed", "pip install 'dicom-hub[nifti]'") from None
    built = build_volume(job)
    data, affine = nifti_layout(built)
    image = nibabel.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    image.header.set_slope_inter(1.0, 0.0)
    with atomic_output(job.output_path, job.overwrite) as tmp:
        opener = gzip.GzipFile(tmp, "wb", compresslevel=int(job.option("compress_level")), mtime=0) if compressed else tmp.open("wb")
        with opener as fh:
            image.to_file_map({"image": nibabel.FileHolder(fileobj=fh)})
    description = describe(built)
    description["nifti"] = {"shape": list(data.shape), "affine_ras": affine.round(6).tolist(), "qform_code": 1, "sform_code": 1, "voxel_order": ["column", "row (bottom up)", "slice"]}
    description["acquisition"] = _acquisition(built)
    outputs = [str(job.output)]
    if sidecar is not None:
        write_json(sidecar, description, job.overwrite)
        outputs.append(str(sidecar))
    return Outcome(metadata=description, output_files=outputs)


def nifti_layout(built: Volume) -> tuple[np.ndarray, np.ndarray]:
    """(data indexed [column, row from the bottom, slice], RAS affine of that index)."""
    import numpy as np

    lps = built.stack.affine()  # index order (slice, row, column)
    rows = built.data.shape[1]
    affine = np.eye(4)
    affine[:3, 0] = lps[:3, 2]
    affine[:3, 1] = -lps[:3, 1]
    affine[:3, 2] = lps[:3, 0]
    affine[:3, 3] = lps[:3, 3] + (rows - 1) * lps[:3, 1]
    affine[:3] *= np.array(LPS_TO_RAS)[:, None]
    # C-order [slice, row reversed, column] is exactly NIfTI's Fortran-order [column, row, slice].
    data = np.ascontiguousarray(built.data[:, ::-1, :]).T
    return data, affine


def _acquisition(built: Volume) -> dict[str, Any]:
    ds = built.stack.planes[0].dataset
    values = {kw: element_value(ds[kw]) for kw in ACQUISITION_KEYWORDS if kw in ds}
    return {kw: v for kw, v in values.items() if v not in (None, "", [])}
