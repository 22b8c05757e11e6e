"""Shared machinery of the subprocess toolkit adapters: transfer syntax rules, dump parsing,
error mapping, output checks and the Annex E check used by every external anonymizer."""
