"""DICOM networking knowledge shared by every backend: query identifiers, status meanings,
where received instances go, and the TLS settings of the network ops."""
