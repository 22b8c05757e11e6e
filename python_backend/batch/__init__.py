"""Batch work at archive scale: discovery, a parallel per-file runner, and the batch ops.

- `discovery`: `find_dicom_files` / `scan` find the DICOM files in a tree from names and first bytes.
- `runner`: `run_batch(job, func, ...)` runs a module-level per-file function on every core and
  returns the batch response shape (see its docstring; `batch_anonymize` is built on it).
- `executors`, `dask_executor`, `lifetime`: where the per-file work runs (a local process pool
  whose workers die with their parent, or a Dask cluster), chosen by `options.executor`.
- `ops`: `batch_list`, `batch_validate`, `batch_decompress`, `batch_convert`.
- `organize`: sort files into sanitized folders named from header values.
- `extract`: `extract_metadata`, with `flatten` (header -> row, via pydicom), `fastheader`
  (the same rows straight from the bytes of plain little-endian files), `state` (resumable runs)
  and `extract_dask` (partitions as Dask tasks, a partitioned Parquet dataset).
"""
