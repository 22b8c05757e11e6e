#!/usr/bin/env python3
"""Benchmark: what verifying the written DICOM costs per request, by level, in the same run.

For each request (DICOM-writing ops on pydicom's samples and one 512 x 512 CT of the shared
series), the median time of the request with verification switched off (what it cost before),
then the median time of verifying its output alone, at each level, and its share of the request:
  structure   the default: complete parse, syntax, Pixel Data length/fragments, identity, elements,
  pixels      `verify: "pixels"`: also decode input and output and compare every value.

    .venv/bin/python scripts/bench/bench_verify.py [--repeat 15] [--backend python]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SHARED_CT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--backend", default="python")
    args = parser.parse_args()
    from dicom_hub.adapters import dispatch as dispatcher
    from dicom_hub.contract.files import resolve_sample

    ct, mr_rle = str(resolve_sample("CT_small.dcm")), str(resolve_sample("MR_small_RLE.dcm"))
    shared = next((p for p in (SHARED_CT, ROOT.parents[1] / "shared" / "data" / "cerebrix-ct") if p.is_dir()), SHARED_CT)
    big = sorted(shared.glob("*.dcm"))[:1]  # the shared CT series (a worktree sits one level deeper)
    out = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    requests = {
        "CT_small -> implicit": ("transcode", ct, {"transfer_syntax": "implicit"}),
        "CT_small -> rle": ("transcode", ct, {"transfer_syntax": "rle"}),
        "CT_small -> j2k": ("transcode", ct, {"transfer_syntax": "j2k"}),
        "MR_small_RLE -> explicit": ("transcode", mr_rle, {"transfer_syntax": "explicit"}),
        "CT_small modify_tags": ("modify_tags", ct, {"set": {"PatientName": "Bench^Mark"}}),
        "CT_small anonymize": ("anonymize", ct, {}),
    }
    if big:
        requests["CT 512x512 -> rle"] = ("transcode", str(big[0]), {"transfer_syntax": "rle"})
        requests["CT 512x512 -> j2k"] = ("transcode", str(big[0]), {"transfer_syntax": "j2k"})
    from dicom_hub.adapters.verify import verify_outcome
    from dicom_hub.contract.catalog import get_op
    from dicom_hub.contract.job import Outcome

    verify = dispatcher.verify_outcome
    print(f"{'request':<26} {'op (no verify)':>15} {'structure':>20} {'pixels':>20}")
    for label, (op, source, options) in requests.items():
        request = {"op": op, "input": source, "output": str(out / f"{op}.dcm"), "backend": args.backend, "options": {**options, "overwrite": True}}
        dispatcher.verify_outcome = lambda *a, **k: None
        try:
            assert dispatcher.dispatch(request).ok, label
            base = _median(lambda r=request: dispatcher.dispatch(r), args.repeat)
        finally:
            dispatcher.verify_outcome = verify
        job = dispatcher.build_job(dispatcher.parse_request(request), get_op(op))
        outcome = Outcome(output_files=[request["output"]])
        cells = []
        for level in ("structure", "pixels"):
            cost = _median(lambda j=job, o=outcome, lv=level: verify_outcome(j, o, args.backend, lv), args.repeat)
            cells.append(f"{cost * 1000:7.1f}ms ({cost / base:4.0%})")
        print(f"{label:<26} {base * 1000:13.1f}ms " + " ".join(f"{c:>20}" for c in cells))
    return 0


def _median(call, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


if __name__ == "__main__":
    sys.exit(main())
