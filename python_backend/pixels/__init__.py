"""Pixel operations of the Python backend: rendering to images, statistics, transfer syntax
conversion. Everything goes through pydicom's own pixel machinery (`pydicom.pixels`) and its
codec plugins; python-gdcm fills in only where pydicom 3 has no encoder (JPEG baseline, JPEG
lossless)."""
