"""Write `contract/data/ps3.3-iods-<source>.bin.gz`: which attributes each IOD of PS3.3 defines, and
their types, so de-identification can tell what an IOD needs (PS3.15 E.1.1) without a hand-made list.

The tables come from highdicom's `_standard/` folder (PS3.3 IODs, modules and attributes as extracted
from the standard by innolitics/dicom-standard). The wheel is downloaded from PyPI and read as a zip;
nothing is installed. Each attribute path ("Seq>Seq>Keyword") is resolved here to tags with pydicom's
dictionary (`pydicom_tables.tags_by_keyword`, repeating groups under their first group), so readers need
neither pydicom nor keyword lookups; a keyword the dictionary lacks drops its attribute and is listed
under "unresolved" (none with pydicom 3.0). The file is laid out to load in a few ms (see `iods.py`):
gzip of one line of JSON, then the arrays that line lists, back to back, little-endian.

- "sop_classes" {uid: iod}, "iods" {iod: [module, ...]}, "modules" {module: row count}, in order;
- "kinds": the attribute types, strongest first; a row's type is its index in this list;
- "arrays" {name: [typecode, count]} (Python `array` typecodes): the paths form a tree of nodes
  (node 0 is the top-level data set; a node's parent comes before it), "parents" and "tags" giving
  each node's parent and the tag it adds; the modules' rows, module after module, are "row_nodes"
  (the attribute's path) and "row_kinds" (its type).

`--check` fails when the committed file differs.

    .venv/bin/python scripts/gen_iod_table.py [--check]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from array import array
from pathlib import Path

from dicom_hub.contract.dicom.deid.iods import KINDS, TABLE_NAME
from dicom_hub.contract.dicom.deid.profile import data_dir
from dicom_hub.contract.dicom.pydicom_tables import tags_by_keyword

SOURCE = "highdicom==0.28.2"
OUTPUT = data_dir() / TABLE_NAME


def download_wheel(folder: Path) -> Path:
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(folder), SOURCE]
    subprocess.run(argv, check=True)
    return next(folder.glob("highdicom-*.whl"))


def read_tables(wheel: Path) -> tuple[dict, dict, dict]:
    with zipfile.ZipFile(wheel) as archive:
        def load(name: str) -> dict:
            return json.loads(archive.read(f"highdicom/_standard/{name}.json"))

        return load("sop_class_iod_map"), load("iod_module_map"), load("module_attribute_map")


def compact(sop_classes: dict, iods: dict, modules: dict) -> bytes:
    """Keep only modules some IOD uses; resolve each path to tags, stored once as a node of a tree."""
    used = sorted({module["key"] for entries in iods.values() for module in entries})
    by_keyword = tags_by_keyword()
    nodes: dict[tuple[int, ...], int] = {(): 0}
    parents, tags, row_nodes, row_kinds = [0], [0], [], []
    counts, unresolved = {}, set()

    def node(path: tuple[int, ...]) -> int:
        found = nodes.get(path)
        if found is None:
            parent = node(path[:-1])  # ancestors first: a reader builds paths in node order
            found = nodes[path] = len(parents)
            parents.append(parent)
            tags.append(path[-1])
        return found

    for name in used:
        count = 0
        for attribute in modules.get(name, ()):  # a few IODs name a module the tables do not define
            keywords = [*attribute["path"], attribute["keyword"]]
            path = [by_keyword.get(keyword) for keyword in keywords]
            if None in path:
                unresolved.update(k for k, t in zip(keywords, path, strict=True) if t is None)
                continue
            kind = attribute["type"] if attribute["type"] != "None" else "3"
            row_nodes.append(node(tuple(path)))  # type: ignore[arg-type]
            row_kinds.append(KINDS.index(kind))
            count += 1
        counts[name] = count
    node_code = "H" if len(parents) <= 0xFFFF else "I"
    arrays = {
        "parents": array(node_code, parents),
        "tags": array("I", tags),
        "row_nodes": array(node_code, row_nodes),
        "row_kinds": array("B", row_kinds),
    }
    header = {
        "source": f"{SOURCE} highdicom/_standard (PS3.3 via innolitics/dicom-standard), keywords as tags by pydicom",
        "sop_classes": dict(sorted(sop_classes.items())),
        "iods": {iod: [module["key"] for module in entries] for iod, entries in sorted(iods.items())},
        "modules": counts,
        "unresolved": sorted(unresolved),
        "kinds": list(KINDS),
        "arrays": {name: [values.typecode, len(values)] for name, values in arrays.items()},
    }
    if sys.byteorder == "big":
        for values in arrays.values():
            values.byteswap()
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    return b"\n".join([text, b"".join(values.tobytes() for values in arrays.values())])


def render(content: bytes) -> bytes:
    return gzip.compress(content, compresslevel=9, mtime=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed table differs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = render(compact(*read_tables(download_wheel(Path(folder)))))
    if args.check:
        same = OUTPUT.exists() and gzip.decompress(OUTPUT.read_bytes()) == gzip.decompress(data)
        print(f"{OUTPUT.name}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    OUTPUT.write_bytes(data)
    print(f"wrote {OUTPUT} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
