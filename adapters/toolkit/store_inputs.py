"""The files a toolkit's `store` sends: the inputs expanded, and each file's SOP Instance UID (the key
its per-file status is reported under), shared by the SCU adapters (dicom-rs, PixelMed)."""

from __future__ import annotations

from pathlib import Path


def expand_inputs(inputs: tuple[Path, ...], recursive: bool) -> list[Path]:
    """Files of the `store` input: files as given, folders listed (recursively on request)."""
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files += sorted(p for p in path.glob(pattern) if p.is_file())
        else:
            files.append(path)
    return files


def sop_instance_uid(path: Path) -> str | None:
    from pydicom import dcmread

    try:
        return str(dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
    except Exception:
        return None
