"""De-identification after DICOM PS3.15 Annex E (Basic Application Level Confidentiality Profile).

- `profile`: Table E.1-1 (`contract/data/ps3.15-annex-e-2024b.tsv`) as data: the action per tag.
- `iods`: what each IOD of PS3.3 defines and with which type (`contract/data/ps3.3-iods-*.json.gz`).
- `rules`: one decision per element from both (the table's action, or removal of what the IOD does not need).
- `engine`: applies it to a pydicom Dataset at every depth, private elements and file meta included.
- `pseudonyms`: keyed HMAC-SHA-256 identifiers, `2.25.` UIDs and per-patient date offsets.
- `dates`: DA/DT shifting; `keys`: where the key comes from; `mapping`: the re-linking report.
- `ops`: the ops `anonymize` and `batch_anonymize`.
"""
