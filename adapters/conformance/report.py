"""Conformance reports: report.json (machine-readable), report.md (a matrix for a README or a PR),
and report.html (one self-contained page: inline CSS, images embedded as data URIs)."""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dicom_hub.adapters.conformance.checks import RunResult
from dicom_hub.adapters.conformance.runner import STATES, Cell, Runner
from dicom_hub.adapters.conformance.specs import Spec

SYMBOL = {"pass": "✓ pass", "fail": "✗ fail", "unsupported": "– unsupported", "unavailable": "? unavailable", "error": "! error"}
COLOR = {"pass": "#d9f2d9", "fail": "#f8d0d0", "unsupported": "#eeeeee", "unavailable": "#fff1c2", "error": "#f3b0e8"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def summary(cells: list[Cell], backends: list[str]) -> dict[str, dict[str, int]]:
    out = {}
    for backend in backends:
        counts = Counter(c.status for c in cells if c.backend == backend)
        out[backend] = {state: counts.get(state, 0) for state in STATES} | {"total": sum(counts.values())}
    return out


def summary_lines(cells: list[Cell], backends: list[str]) -> list[str]:
    return [
        f"{name}: {s['pass']} passed / {s['fail']} failed / {s['unsupported']} unsupported / {s['unavailable']} unavailable / {s['error']} errors / {s['total']} total"
        for name, s in summary(cells, backends).items()
    ]


def _image_of(result: RunResult | None) -> Path | None:
    if result is None or not result.response.get("ok"):
        return None
    candidates = [result.output] if result.output and result.output.is_file() else []
    candidates += sorted(Path(p) for p in result.response.get("output_files", []))
    return next((p for p in candidates if p and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), None)


def findings(specs: list[Spec], cells: list[Cell], runner: Runner) -> list[dict[str, Any]]:
    """Where backends that both claim a spec disagree: who agrees with the reference, by how much."""
    by_key = {(c.spec, c.backend): c for c in cells}
    out = []
    for spec in specs:
        for reference in sorted(spec.references):
            ref_result = runner.results.get((spec.id, reference))
            ref_image = _image_of(ref_result)
            rows = []
            for (spec_id, backend), cell in sorted(by_key.items()):
                if spec_id != spec.id or backend == reference or cell.status not in ("pass", "fail"):
                    continue
                row: dict[str, Any] = {"backend": backend, "agrees": cell.status == "pass", "detail": cell.detail}
                image = _image_of(runner.results.get((spec.id, backend)))
                if ref_image and image:
                    row |= image_agreement(image, ref_image)
                rows.append(row)
            if rows and not all(r["agrees"] for r in rows):
                out.append({"spec": spec.id, "reference": reference, "backends": rows})
    return out


def image_agreement(ours: Path, reference: Path) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    with Image.open(ours) as a, Image.open(reference) as b:
        if a.size != b.size:
            return {"size": list(a.size), "reference_size": list(b.size)}
        x = np.asarray(a.convert("RGB") if a.mode != b.mode else a, dtype=np.float64)
        y = np.asarray(b.convert("RGB") if a.mode != b.mode else b, dtype=np.float64)
    diff = np.abs(x - y)
    return {"max_difference": float(diff.max(initial=0)), "fraction_differing": round(float((diff > 0).mean()), 6)}


def _thumbnail(path: Path, size: int = 192) -> str:
    from PIL import Image

    with Image.open(path) as opened:
        img = opened.convert("RGB") if opened.mode not in ("L", "RGB") else opened.copy()
        img.thumbnail((size, size))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _difference_thumbnail(ours: Path, reference: Path, size: int = 192) -> tuple[str, int, int] | None:
    """|ours - reference| on an absolute scale (black: equal, white: the full value range), with
    its maximum and that full range. Not stretched: a one-level difference stays nearly black
    instead of reading as full disagreement. The thumbnail keeps each block's largest difference,
    so a single differing pixel does not vanish when the image is shrunk."""
    import numpy as np
    from PIL import Image

    with Image.open(ours) as a, Image.open(reference) as b:
        if a.size != b.size:
            return None
        full = 65535 if "16" in a.mode or "16" in b.mode or a.mode in ("I", "F") else 255
        if a.mode == b.mode and a.mode not in ("P", "RGBA", "LA", "1", "CMYK"):
            x, y = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        else:
            x, y = np.asarray(a.convert("RGB"), dtype=np.int64), np.asarray(b.convert("RGB"), dtype=np.int64)
            full = 255
    diff = np.abs(x - y)
    if diff.ndim == 3:
        diff = diff.max(axis=2)
    largest = int(diff.max(initial=0))
    step = max(1, -(-max(diff.shape) // size))
    height, width = -(-diff.shape[0] // step) * step, -(-diff.shape[1] // step) * step
    padded = np.zeros((height, width), dtype=diff.dtype)
    padded[: diff.shape[0], : diff.shape[1]] = diff
    blocks = padded.reshape(height // step, step, width // step, step).max(axis=(1, 3))
    img = Image.fromarray(np.round(blocks * (255.0 / full)).astype(np.uint8), "L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), largest, full


def write_reports(folder: Path, specs: list[Spec], backends: list[str], cells: list[Cell], runner: Runner, drifts: list) -> dict[str, Path]:
    from dicom_hub.adapters.registry import get_adapter

    folder.mkdir(parents=True, exist_ok=True)
    backend_rows = []
    for name in backends:
        try:
            adapter = get_adapter(name)
            backend_rows.append({"name": name, "toolkit": adapter.toolkit, "available": adapter.available(), "version": adapter.version()})
        except Exception as err:  # an adapter that cannot load is reported, not fatal
            backend_rows.append({"name": name, "toolkit": None, "available": False, "version": None, "reason": str(err)})
    document = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backends": backend_rows,
        "specs": [{"id": s.id, "op": s.op, "description": s.description} for s in specs],
        "cells": [c.as_dict() for c in cells],
        "summary": summary(cells, backends),
        "findings": findings(specs, cells, runner),
        "drift": [str(d) for d in drifts],
    }
    paths = {"json": folder / "report.json", "md": folder / "report.md", "html": folder / "report.html"}
    paths["json"].write_text(json.dumps(document, indent=2) + "\n")
    paths["md"].write_text(_markdown(document, backends))
    paths["html"].write_text(_html(document, specs, backends, runner))
    return paths


def _markdown(doc: dict[str, Any], backends: list[str]) -> str:
    cells = {(c["spec"], c["backend"]): c for c in doc["cells"]}
    lines = ["# dicom-hub conformance", "", f"Generated {doc['generated']}.", ""]
    lines += ["| spec | " + " | ".join(backends) + " |", "|---|" + "---|" * len(backends)]
    for spec in doc["specs"]:
        row = [SYMBOL[cells[(spec["id"], b)]["status"]] if (spec["id"], b) in cells else "" for b in backends]
        lines.append(f"| `{spec['id']}` | " + " | ".join(row) + " |")
    lines += ["", "## Summary", ""]
    lines += [f"- {line}" for line in summary_lines([Cell(**c) for c in doc["cells"]], backends)]
    if doc["findings"]:
        lines += ["", "## Cross-backend findings", ""]
        for finding in doc["findings"]:
            for row in finding["backends"]:
                extra = f" (max difference {row['max_difference']:g}, {row['fraction_differing']:.2%} of pixels)" if "max_difference" in row else ""
                verdict = "agrees" if row["agrees"] else f"disagrees: {row['detail']}"
                lines.append(f"- `{finding['spec']}`: {row['backend']} vs {finding['reference']}: {verdict}{extra}")
    if doc["drift"]:
        lines += ["", "## Drift from contract/expected-matrix.json", ""] + [f"- {d}" for d in doc["drift"]]
    return "\n".join(lines) + "\n"


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table.matrix{border-collapse:collapse;margin:1em 0}
.matrix th,.matrix td{border:1px solid #bbb;padding:4px 8px;font-size:14px}
.matrix th{background:#f4f4f4;position:sticky;top:0}
.matrix td.state{text-align:center;white-space:nowrap}
figure{display:inline-block;margin:4px;text-align:center;font-size:12px}
figure img{border:1px solid #999;image-rendering:pixelated;max-width:192px}
details{margin:4px 0} code{font-size:13px} .drift{color:#a00}
"""


def _html(doc: dict[str, Any], specs: list[Spec], backends: list[str], runner: Runner) -> str:
    esc = html.escape
    cells = {(c["spec"], c["backend"]): c for c in doc["cells"]}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>dicom-hub conformance</title><style>{CSS}</style></head><body>"]
    parts.append(f"<h1>dicom-hub conformance</h1><p>Generated {esc(doc['generated'])}.</p>")
    parts.append("<ul id='summary'>" + "".join(f"<li>{esc(line)}</li>" for line in summary_lines([Cell(**c) for c in doc["cells"]], backends)) + "</ul>")
    if doc["drift"]:
        parts.append("<h2 class='drift'>Drift</h2><ul>" + "".join(f"<li class='drift'>{esc(d)}</li>" for d in doc["drift"]) + "</ul>")
    parts.append("<table class='matrix' id='matrix'><thead><tr><th>spec</th>")
    parts += [f"<th>{esc(b)}</th>" for b in backends]
    parts.append("</tr></thead><tbody>")
    for spec in doc["specs"]:
        parts.append(f"<tr><td><a href='#spec-{esc(spec['id'])}'><code>{esc(spec['id'])}</code></a></td>")
        for backend in backends:
            cell = cells.get((spec["id"], backend))
            if cell is None:
                parts.append("<td></td>")
                continue
            parts.append(
                f"<td class='state {cell['status']}' data-status='{cell['status']}' style='background:{COLOR[cell['status']]}' "
                f"title='{esc(cell['detail'])}'>{esc(SYMBOL[cell['status']])}</td>"
            )
        parts.append("</tr>")
    parts.append("</tbody></table>")
    if doc["findings"]:
        parts.append("<h2>Cross-backend findings</h2><ul id='findings'>")
        for finding in doc["findings"]:
            for row in finding["backends"]:
                extra = f" (max difference {row['max_difference']:g}, {row['fraction_differing']:.2%} of pixels differ)" if "max_difference" in row else ""
                verdict = "agrees" if row["agrees"] else f"disagrees: {row['detail']}"
                parts.append(f"<li><code>{esc(finding['spec'])}</code>: {esc(row['backend'])} vs {esc(finding['reference'])} — {esc(verdict)}{esc(extra)}</li>")
        parts.append("</ul>")
    parts.append("<h2>Details</h2>")
    for spec in specs:
        parts.append(f"<section id='spec-{esc(spec.id)}'><h3><code>{esc(spec.id)}</code> — {esc(spec.op)}</h3>")
        if spec.description:
            parts.append(f"<p>{esc(spec.description)}</p>")
        parts.append(f"<details><summary>request and expectations</summary><pre>{esc(json.dumps({'request': spec.request, 'expect': list(spec.expect)}, indent=2))}</pre></details>")
        parts.append("<ul>")
        for backend in backends:
            cell = cells.get((spec.id, backend))
            if cell:
                detail = "<br>".join(esc(f) for f in cell["failures"]) or esc(cell["detail"])
                parts.append(f"<li><b>{esc(backend)}</b>: {esc(cell['status'])} {detail}</li>")
        parts.append("</ul>")
        parts.append(_image_row(spec, backends, runner))
        parts.append("</section>")
    parts.append("</body></html>")
    return "".join(parts)


def _image_row(spec: Spec, backends: list[str], runner: Runner) -> str:
    found = {b: _image_of(runner.results.get((spec.id, b))) for b in backends}
    images = {b: p for b, p in found.items() if p}
    if not images:
        return ""
    reference = next((r for r in sorted(spec.references) if r in images), None) or next(iter(images))
    figures = []
    for backend, path in images.items():
        figures.append(f"<figure><img alt='{html.escape(backend)}' src='{_thumbnail(path)}'><figcaption>{html.escape(backend)}</figcaption></figure>")
        if backend != reference:
            diff = _difference_thumbnail(path, images[reference])
            if diff:
                uri, largest, full = diff
                caption = f"|{html.escape(backend)} − {html.escape(reference)}|, absolute scale (white = {full}): max {largest}"
                figures.append(f"<figure><img alt='difference' src='{uri}'><figcaption>{caption}</figcaption></figure>")
    return "<div class='images'>" + "".join(figures) + "</div>"
