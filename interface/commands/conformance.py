"""`dicom-hub conformance`: run the operation specs against backends, write reports, and fail
when a cell got worse than `contract/expected-matrix.json` records."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backends", default="all", help="comma-separated backend names, or all (default)")
    parser.add_argument("--specs", default="*", metavar="GLOB", help="spec ids to run (glob, default *)")
    parser.add_argument("--spec-dir", type=Path, action="append", default=[], metavar="DIR", help="also run the specs in this folder (repeatable)")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write report.json, report.md and report.html here")
    parser.add_argument("--expect", type=Path, metavar="FILE", help="expected matrix (default: the one shipped in contract/)")
    parser.add_argument("--update-expect", action="store_true", help="record this run's cells in the expected matrix instead of comparing (the records of cells not run are kept)")
    parser.add_argument("--jobs", type=int, default=2, help="cells run at once (default 2)")


def run(args: argparse.Namespace) -> int:
    from importlib.resources import files

    from dicom_hub.adapters.conformance.matrix import (
        compare_with_expected,
        expected_document,
        load_expected,
        run_matrix,
    )
    from dicom_hub.adapters.conformance.report import summary_lines, write_reports
    from dicom_hub.adapters.conformance.specs import load_specs
    from dicom_hub.adapters.registry import adapter_names

    known = adapter_names()
    backends = known if args.backends == "all" else [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in known]
    if unknown:
        print(f"dicom-hub conformance: unknown backend(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    try:
        specs = load_specs(args.specs, tuple(args.spec_dir))
    except ValueError as err:
        print(f"dicom-hub conformance: {err}", file=sys.stderr)
        return 2
    if not specs:
        print(f"dicom-hub conformance: no spec matches {args.specs!r}", file=sys.stderr)
        return 2
    expect_path = args.expect or Path(str(files("dicom_hub.contract").joinpath("expected-matrix.json")))
    progress = _progress_bar(len(specs) * len(backends))
    with tempfile.TemporaryDirectory(prefix="dicom-hub-conformance-") as tmp:
        workdir = args.report / "outputs" if args.report else Path(tmp)
        cells, runner = run_matrix(specs, backends, workdir, jobs=args.jobs, progress=progress)
        if progress:
            progress.close()
        if args.update_expect:
            import json

            expect_path.write_text(json.dumps(expected_document(cells, load_expected(expect_path)), indent=2) + "\n")
            print(f"wrote {expect_path}", file=sys.stderr)
            drifts = []
        else:
            drifts = compare_with_expected(cells, load_expected(expect_path))
        if args.report:
            paths = write_reports(args.report, specs, backends, cells, runner, drifts)
            print("reports: " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    for line in summary_lines(cells, backends):
        print(line)
    for drift in drifts:
        print(drift)
    return 1 if drifts else 0


def _progress_bar(total: int):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="cell", file=sys.stderr)

    class _Progress:
        def __call__(self, cell) -> None:
            bar.update(1)

        def close(self) -> None:
            bar.close()

    return _Progress()
