#!/usr/bin/env python3
"""Make a synthetic archive for the batch benchmarks: many distinct patients, studies and series,
built from a real CT series (default ../shared/data/cerebrix-ct), deterministic from a seed.

    .venv/bin/python scripts/bench/make_archive.py OUT_DIR [--files 20000] [--seed 0]
        [--series-size 50] [--series-per-study 2] [--studies-per-patient 2] [--matrix 64]

Layout: OUT/<PatientID>/<StudyDate>_<n>/<SeriesNumber>/IM<nnnn>.dcm, with every 10th file named by
its SOP Instance UID without an extension (as archives often do). Each file keeps the real header
of its source slice (every element, sequences included) with new patient, study, series and
instance identity. `--matrix N` replaces the 512x512 pixels by an N x N subsample so 20,000 files
fit in ~250 MB (`--matrix 0` keeps the original pixel data: ~10 GB for 20,000 files).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

DEFAULT_SOURCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "cerebrix-ct"
FIRST_NAMES = ["Alex", "Sam", "Kim", "Lee", "Noor", "Ravi", "Mia", "Ola", "Jon", "Ana"]
LAST_NAMES = ["Smith", "Garcia", "Chen", "Okafor", "Novak", "Silva", "Berg", "Haddad", "Kumar", "Dubois"]


def load_sources(folder: Path, matrix: int) -> list:
    """The source slices, sorted by instance number, with pixel data subsampled when asked."""
    from pydicom import dcmread

    datasets = [dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    if not datasets:
        sys.exit(f"no .dcm files in {folder}")
    datasets.sort(key=lambda ds: int(ds.get("InstanceNumber", 0)))
    if matrix:
        for ds in datasets:
            arr = ds.pixel_array
            step_r, step_c = max(1, arr.shape[0] // matrix), max(1, arr.shape[1] // matrix)
            small = arr[::step_r, ::step_c][:matrix, :matrix].copy()
            ds.Rows, ds.Columns = small.shape
            ds.PixelData = small.tobytes()
            if ds.file_meta.TransferSyntaxUID.is_compressed:
                ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    return datasets


def make_archive(out: Path, files: int, seed: int, series_size: int, series_per_study: int, studies_per_patient: int, matrix: int, source: Path) -> int:
    from pydicom.uid import generate_uid

    rng = random.Random(seed)
    sources = load_sources(source, matrix)
    per_study = series_size * series_per_study
    per_patient = per_study * studies_per_patient

    def uid(*parts: object) -> str:
        return generate_uid(entropy_srcs=[str(seed), *map(str, parts)])

    written = 0
    for index in range(files):
        p, rest = divmod(index, per_patient)
        s, rest = divmod(rest, per_study)
        r, i = divmod(rest, series_size)
        ds = sources[i % len(sources)]
        if i == 0 and r == 0 and s == 0:
            patient_name = f"{rng.choice(LAST_NAMES)}^{rng.choice(FIRST_NAMES)}^{p}"
            birth = f"{rng.randint(1930, 2010)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        if i == 0 and r == 0:
            study_date = f"{rng.randint(2000, 2024)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        patient_id = f"BENCH{p:06d}"
        study_uid, series_uid, sop_uid = uid("study", p, s), uid("series", p, s, r), uid("sop", index)
        ds.PatientID, ds.PatientName, ds.PatientBirthDate = patient_id, patient_name, birth
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyID = study_uid, study_date, str(s + 1)
        ds.AccessionNumber = f"ACC{p:06d}{s:02d}"
        ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, r + 1
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.InstanceNumber = i + 1
        folder = out / patient_id / f"{study_date}_{s + 1}" / f"{r + 1:03d}"
        name = sop_uid if index % 10 == 9 else f"IM{i + 1:04d}.dcm"
        folder.mkdir(parents=True, exist_ok=True)
        ds.save_as(folder / name, enforce_file_format=True)
        written += 1
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--series-size", type=int, default=50)
    parser.add_argument("--series-per-study", type=int, default=2)
    parser.add_argument("--studies-per-patient", type=int, default=2)
    parser.add_argument("--matrix", type=int, default=64, help="pixel matrix of each file (0: keep the original)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out} is not empty; choose a new folder")
    start = time.perf_counter()
    count = make_archive(args.out, args.files, args.seed, args.series_size, args.series_per_study, args.studies_per_patient, args.matrix, args.source)
    print(f"wrote {count} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
