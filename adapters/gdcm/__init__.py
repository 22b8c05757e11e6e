"""GDCM as a backend: gdcmdump/gdcminfo, gdcmconv (the only J2K encoder here) and gdcmanon."""
