"""Where the pseudonym key comes from: `key`, `key_file`, `key_env`, or a fresh random key.

Without a key the results cannot be linked to any other run (that is the point of a random key);
with `key_file` naming a file that does not exist yet, the new random key is written there
(mode 0600) so the user can run the next batch with the same key.
"""

from __future__ import annotations

import os
from pathlib import Path

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job

MIN_KEY_LENGTH = 16


def resolve_key(job: Job) -> tuple[bytes, str]:
    """(key bytes, where it came from: 'option' | 'key_file' | 'key_env' | 'random' | 'random, saved')."""
    given = [name for name in ("key", "key_file", "key_env") if job.options.get(name) is not None]
    if len(given) > 1:
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            f"options {' and '.join(given)} both give a key",
            "give exactly one of key, key_file, key_env",
        )
    if "key" in given:
        return _checked(job.options["key"], "options.key"), "option"
    if "key_env" in given:
        name = job.options["key_env"]
        value = os.environ.get(name)
        if value is None:
            raise HubError(
                ErrorCode.INVALID_REQUEST,
                f"environment variable {name} is not set",
                f"export {name}=<secret of at least {MIN_KEY_LENGTH} characters>",
            )
        return _checked(value, f"environment variable {name}"), "key_env"
    if "key_file" in given:
        path = Path(job.options["key_file"]).expanduser()
        if path.exists():
            return _read_key_file(path), "key_file"
        key = _random_key()
        _write_key_file(path, key)
        return key.encode(), "random, saved"
    return _random_key().encode(), "random"


def _random_key() -> str:
    import secrets  # only for a key made here: a run given its key does without it (start-up)

    return secrets.token_hex(32)


def _checked(value: str, where: str) -> bytes:
    value = value.strip()
    if len(value) < MIN_KEY_LENGTH:
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            f"the key in {where} is shorter than {MIN_KEY_LENGTH} characters",
            "use a long random secret (e.g. `openssl rand -hex 32`)",
        )
    return value.encode()


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            f"cannot read key_file {path}: {err}",
            "point key_file at a readable text file holding the key",
        ) from None
    return _checked(text, f"key_file {path}")


def _write_key_file(path: Path, key: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
    except OSError as err:
        raise HubError(
            ErrorCode.OUTPUT_ERROR,
            f"cannot write key_file {path}: {err.strerror}",
            "choose a writable path for key_file",
        ) from None
