"""DCMTK (OFFIS) as a backend: file ops, pixel ops, anonymize via dcmodify, and the network tools."""
