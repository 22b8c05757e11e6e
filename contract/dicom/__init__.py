"""What dicom-hub knows about DICOM itself, shared by every backend.

The Python backend and the toolkit adapters both import this package, so a rule of the standard
(an Annex E action, a query identifier, a status meaning, a storage path) is written once. It
depends only on the standard library, pydicom and the rest of `dicom_hub.contract` (numpy only
where pydicom's pixel decoders return arrays, and lazily); never on `adapters`, `python_backend`
or `interface` (tests/test_import_graph.py holds this). See contract/README.md for what lives where.
"""
