"""De-identification after DICOM PS3.15 Annex E (Basic Application Level Confidentiality Profile).

The standard's tables and the decision per element are shared with the toolkit adapters and live
in `dicom_hub.contract.dicom.deid` (profile, IODs, rules, dummies, pseudonyms, keys, side files).
Here:
- `engine`: applies the profile to a pydicom Dataset at every depth, private elements and file meta included.
- `dates`: DA/DT shifting; `mapping`: the re-linking report.
- `ops`: the ops `anonymize` and `batch_anonymize`.
"""
