"""The expectations a spec can state, one function each. A check returns None when it holds and
a message with the observed value when it does not."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MISSING = object()


@dataclass
class RunResult:
    """One backend's answer to one spec: the response data and the output path it was given."""

    response: dict[str, Any]
    output: Path | None


@dataclass
class CheckContext:
    run: RunResult
    inputs: list[Path]
    reference: Callable[[str], RunResult | None]

    @property
    def response(self) -> dict[str, Any]:
        return self.run.response

    def output_file(self) -> Path | None:
        """The file to inspect: the output file, or the first file written into an output folder."""
        files = [Path(p) for p in self.response.get("output_files", []) if Path(p).is_file()]
        if self.run.output is not None and self.run.output.is_file():
            return self.run.output
        return sorted(files)[0] if files else None


# -- normalizations (documented in contract/README.md) ----------------------------------------------
def _pn(value: Any) -> Any:
    if isinstance(value, str):
        groups = [re.sub(r"\^+$", "", g.strip()) for g in value.split("=")]
        while groups and not groups[-1]:
            groups.pop()
        return "=".join(groups)
    return value


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


NORMALIZERS: dict[str, Callable[[Any], Any]] = {
    "pn": _pn,
    "number_strings": _number,
    "strip": lambda v: v.strip() if isinstance(v, str) else v,
    "case": lambda v: v.lower() if isinstance(v, str) else v,
}


def normalize(value: Any, names: list[str]) -> Any:
    if isinstance(value, list):
        items = [normalize(v, names) for v in value]
        return sorted(items, key=repr) if "sort" in names else items
    if isinstance(value, dict):
        return {k: normalize(v, names) for k, v in value.items()}
    for name in names:
        if name in NORMALIZERS:
            value = NORMALIZERS[name](value)
    return value


def lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return MISSING
    return data


def _short(value: Any) -> str:
    text = "missing" if value is MISSING else repr(value)
    return text if len(text) < 200 else text[:197] + "..."


# -- the checks ---------------------------------------------------------------------------------------
def check_ok(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    if ctx.response["ok"]:
        return None
    return f"expected ok, got error {ctx.response['error']}"


def check_error_code(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    error = ctx.response.get("error")
    if error and error["code"] == exp["code"]:
        return None
    return f"expected error {exp['code']}, got {error['code'] if error else 'ok'}"


def check_metadata_equals(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    names = exp.get("normalize", [])
    got = lookup(ctx.response["metadata"], exp["path"])
    if got is not MISSING and normalize(got, names) == normalize(exp["value"], names):
        return None
    return f"metadata.{exp['path']}: expected {_short(exp['value'])}, got {_short(got)}"


def check_metadata_close(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    got = lookup(ctx.response["metadata"], exp["path"])
    if "reference" in exp:
        ref = ctx.reference(exp["reference"])
        want: Any = lookup(ref.response["metadata"], exp["path"]) if ref else MISSING
    else:
        want = exp.get("value", MISSING)
    tol = exp.get("tolerance", 0)
    try:
        if abs(float(got) - float(want)) <= tol:
            return None
    except (TypeError, ValueError):
        pass
    return f"metadata.{exp['path']}: expected {_short(want)} ±{tol}, got {_short(got)}"


def check_metadata_matches(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    ref = ctx.reference(exp["reference"])
    if ref is None or not ref.response["ok"]:
        return f"reference backend {exp['reference']} gave no result to compare with"
    names = exp.get("normalize", [])
    got = normalize(lookup(ctx.response["metadata"], exp["path"]), names)
    want = normalize(lookup(ref.response["metadata"], exp["path"]), names)
    if got is not MISSING and got == want:
        return None
    return f"metadata.{exp['path']}: {exp['reference']} has {_short(want)}, got {_short(got)}"


def check_output_count(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    count = len(ctx.response.get("output_files", []))
    return None if count == exp["count"] else f"expected {exp['count']} output file(s), got {count}"


def check_image(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    from PIL import Image

    path = ctx.output_file()
    if path is None:
        return "no output image"
    with Image.open(path) as img:
        problems = []
        if "size" in exp and list(img.size) != list(exp["size"]):
            problems.append(f"size {list(img.size)} != {exp['size']}")
        if "mode" in exp and img.mode != exp["mode"]:
            problems.append(f"mode {img.mode} != {exp['mode']}")
        if "format" in exp and img.format != exp["format"]:
            problems.append(f"format {img.format} != {exp['format']}")
    return "; ".join(problems) or None


def check_image_agrees(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    import numpy as np
    from PIL import Image

    ours = ctx.output_file()
    ref = ctx.reference(exp["reference"])
    theirs = None
    if ref is not None and ref.response["ok"]:
        files = [Path(p) for p in ref.response["output_files"] if Path(p).is_file()]
        theirs = ref.output if ref.output and ref.output.is_file() else (sorted(files)[0] if files else None)
    if ours is None or theirs is None:
        return "missing image to compare" + ("" if ours else " (ours)") + ("" if theirs else f" ({exp['reference']})")
    with Image.open(ours) as a, Image.open(theirs) as b:
        if a.size != b.size:
            return f"size {a.size} != {exp['reference']} {b.size}"
        x = np.asarray(a.convert("RGB") if a.mode != b.mode else a, dtype=np.float64)
        y = np.asarray(b.convert("RGB") if a.mode != b.mode else b, dtype=np.float64)
    diff = np.abs(x - y)
    over = float((diff > exp["tolerance"]).mean())
    if over <= exp.get("max_fraction", 0.0):
        return None
    return f"{over:.2%} of pixels differ from {exp['reference']} by more than {exp['tolerance']} (max {diff.max():g})"


def _read(path: Path):
    from pydicom import dcmread

    return dcmread(path)


def check_transfer_syntax(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    path = ctx.output_file()
    if path is None:
        return "no output file"
    ts = str(_read(path).file_meta.get("TransferSyntaxUID", ""))
    return None if ts == exp["uid"] else f"transfer syntax {ts or 'missing'} != {exp['uid']}"


def check_pixels_match_input(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    import numpy as np

    path = ctx.output_file()
    if path is None:
        return "no output file"
    try:
        ours = _read(path).pixel_array.astype(np.float64)
        source = _read(ctx.inputs[0]).pixel_array.astype(np.float64)
    except Exception as err:
        return f"cannot decode pixels: {type(err).__name__}: {err}"
    if ours.shape != source.shape:
        return f"pixel shape {ours.shape} != input {source.shape}"
    worst = float(np.abs(ours - source).max(initial=0))
    tol = exp.get("tolerance", 0)
    return None if worst <= tol else f"pixels differ from the input by up to {worst:g} (allowed {tol})"


def check_deidentified(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    """The Annex E leak check every toolkit's `anonymize` is held to (`adapters/toolkit/annex_e.py`)."""
    from dicom_hub.adapters.toolkit.annex_e import leak_check
    from dicom_hub.contract.errors import HubError

    path = ctx.output_file()
    if path is None:
        return "no output file"
    try:
        leak_check(ctx.inputs[0], path)
    except HubError as leak:
        return leak.message
    return None


def check_tags(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    path = ctx.output_file()
    if path is None:
        return "no output file"
    ds = _read(path)
    problems = [f"{kw} missing" for kw in exp.get("present", []) if kw not in ds]
    problems += [f"{kw} present" for kw in exp.get("absent", []) if kw in ds]
    for kw, want in exp.get("equal", {}).items():
        got = str(ds[kw].value) if kw in ds else None
        if got != str(want):
            problems.append(f"{kw} = {got!r}, expected {want!r}")
    if exp.get("changed"):
        source = _read(ctx.inputs[0])
        for kw in exp["changed"]:
            if kw in ds and kw in source and ds[kw].value == source[kw].value:
                problems.append(f"{kw} unchanged")
    return "; ".join(problems) or None


def check_stdout_contains(ctx: CheckContext, exp: dict[str, Any]) -> str | None:
    names = exp.get("normalize", [])
    stdout = normalize(ctx.response["stdout"], names)
    missing = [s for s in exp["contains"] if normalize(s, names) not in stdout]
    return None if not missing else f"stdout lacks {missing}"


CHECKS: dict[str, Callable[[CheckContext, dict[str, Any]], str | None]] = {
    "ok": check_ok,
    "error_code": check_error_code,
    "metadata_equals": check_metadata_equals,
    "metadata_close": check_metadata_close,
    "metadata_matches": check_metadata_matches,
    "output_count": check_output_count,
    "image": check_image,
    "image_agrees": check_image_agrees,
    "transfer_syntax": check_transfer_syntax,
    "pixels_match_input": check_pixels_match_input,
    "deidentified": check_deidentified,
    "tags": check_tags,
    "stdout_contains": check_stdout_contains,
}
