#!/usr/bin/env python3
"""Benchmark: a CT series to 8-bit PNG through `dicom-hub run --stream` (one process, one request
per file) against DCMTK's `dcmj2pnm` run once per file, in the same run, same window.

    .venv/bin/python scripts/bench/bench_to_image.py [SERIES_DIR] [--repeat 3] [--use-synthetic] [--synthetic 100]

The series is ../shared/data/cerebrix-ct when present, else a synthetic 512x512 CT series.
Both sides apply the file's first window (`dcmj2pnm +on +Wi 1`); a check after the timed runs
confirms the images agree within one grey level, so the two do the same work.
Target: ours per file <= dcmj2pnm per file (ratio <= 1.0). Process start-up is included on
both sides (once for the stream, once per file for dcmj2pnm), as a user would see it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_CT, dicom_hub_exe, report, time_command  # noqa: E402


def synthetic_series(folder: Path, count: int) -> list[Path]:
    """`count` 512x512 signed 16-bit CT slices with a soft-tissue window, written with pydicom."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[-256:256, -256:256]
    body = (xx**2 + yy**2 < 200**2) * 1040 + rng.integers(-40, 40, size=(512, 512))
    series, study = generate_uid(), generate_uid()
    paths = []
    for i in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality, ds.InstanceNumber = study, series, "CT", i + 1
        ds.Rows = ds.Columns = 512
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth = -1024, 1, 40, 400
        ds.PixelData = (body + i).astype(np.int16).tobytes()
        path = folder / f"slice{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def series_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def stream_requests(files: list[Path], out: Path) -> bytes:
    lines = [
        json.dumps({"op": "to_image", "backend": "python", "input": str(f), "output": str(out / f"{f.stem}.png"), "options": {"overwrite": True}})
        for f in files
    ]
    return ("\n".join(lines) + "\n").encode()


def dcmj2pnm_loop_script(files: list[Path], out: Path, dcmj2pnm: str) -> list[str]:
    """One shell-free child that runs dcmj2pnm once per file (so the timing covers every process)."""
    code = (
        "import subprocess, sys\n"
        "for src, dst in zip(sys.argv[2::2], sys.argv[3::2]):\n"
        "    subprocess.run([sys.argv[1], '+on', '+Wi', '1', src, dst], check=True)\n"
    )
    argv = [sys.executable, "-c", code, dcmj2pnm]
    for f in files:
        argv += [str(f), str(out / f"{f.stem}.png")]
    return argv


def agreement(ours: Path, theirs: Path, files: list[Path]) -> int:
    import numpy as np
    from PIL import Image

    worst = 0
    for f in files[:: max(1, len(files) // 10)]:
        with Image.open(ours / f"{f.stem}.png") as a, Image.open(theirs / f"{f.stem}.png") as b:
            worst = max(worst, int(np.abs(np.asarray(a, dtype=np.int64) - np.asarray(b, dtype=np.int64)).max()))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("series", nargs="?", type=Path, help="folder of one series (default: shared cerebrix-ct, else synthetic)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side (median reported)")
    parser.add_argument("--synthetic", type=int, default=100, help="slices in the synthetic series")
    parser.add_argument("--use-synthetic", action="store_true", help="use the synthetic series even when the shared one exists")
    args = parser.parse_args()
    dcmj2pnm = shutil.which("dcmj2pnm")
    if dcmj2pnm is None:
        print("dcmj2pnm not found: apt-get install dcmtk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-to-image-") as tmp:
        work = Path(tmp)
        folder = args.series or (SHARED_CT if SHARED_CT.is_dir() and not args.use_synthetic else None)
        if folder is None:
            (work / "series").mkdir()
            files = synthetic_series(work / "series", args.synthetic)
            label = f"synthetic series ({len(files)} x 512x512)"
        else:
            files = series_files(folder)
            label = f"{folder.name} ({len(files)} files)"
        ours_out, theirs_out = work / "ours", work / "dcmtk"
        ours_out.mkdir()
        theirs_out.mkdir()
        for f in files:  # warm the page cache for both sides
            f.read_bytes()
        requests = stream_requests(files, ours_out)
        ours_wall, ours_cpu = time_command([dicom_hub_exe(), "run", "--stream"], stdin=requests, repeat=args.repeat)
        theirs_wall, theirs_cpu = time_command(dcmj2pnm_loop_script(files, theirs_out, dcmj2pnm), repeat=args.repeat)
        pngs = len(list(ours_out.glob("*.png")))
        if pngs != len(files):
            print(f"only {pngs} of {len(files)} PNGs were written by dicom-hub", file=sys.stderr)
            return 1
        worst = agreement(ours_out, theirs_out, files)
        count = len(files)
        print(f"series: {label}; images agree within {worst} grey level(s)")
        print(f"dicom-hub run --stream: {1000 * ours_wall / count:.1f} ms/file wall, {1000 * ours_cpu / count:.1f} ms/file CPU")
        print(f"dcmj2pnm per file:      {1000 * theirs_wall / count:.1f} ms/file wall, {1000 * theirs_cpu / count:.1f} ms/file CPU")
        report("wall time per file (ours / dcmj2pnm)", ours_wall / count, theirs_wall / count, "<= 1.0")
        report("CPU time per file (ours / dcmj2pnm)", ours_cpu / count, theirs_cpu / count, "<= 1.0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
