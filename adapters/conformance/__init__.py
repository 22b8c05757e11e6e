"""The conformance suite: run the operation specs of `contract/specs/` against every backend and
classify each cell as pass, fail, unsupported, unavailable or error."""
