"""Decoding Pixel Data with pydicom's plugins, safest first, with codec failures as contract errors:
shared by the Python backend's pixel ops and the dispatcher's check of written pixels (`verify`)."""
