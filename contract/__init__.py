"""The dicom-hub contract: request/response models, error codes, the op catalog and file rules.

Everything a backend needs to speak the contract lives here; nothing here knows about a backend.
"""

CONTRACT_VERSION = "1.0"
