"""A DICOMweb client for one job (dicomweb-client over a requests session): authentication,
timeouts, and every HTTP failure turned into `network_error` with the status and the server's words.

Credentials never come from the request text: `auth_env` names an environment variable and
`auth_file` a file (first line) holding `user:password` (basic) or the token (bearer).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job

T = TypeVar("T")
INSTALL_HINT = "pip install 'dicom-hub[dicomweb]'"
MESSAGE_LIMIT = 300  # characters of the server's answer quoted in an error


def credentials(job: Job) -> str | None:
    """The secret named by auth_env or auth_file (None when auth is none)."""
    if job.option("auth") == "none":
        return None
    if job.option("auth_env"):
        name = job.option("auth_env")
        value = os.environ.get(name)
        if not value:
            raise HubError(ErrorCode.INVALID_REQUEST, f"environment variable {name} (options.auth_env) is not set or empty", f"export {name}=<credentials>")
        return value.strip()
    path = Path(job.option("auth_file")).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise HubError(ErrorCode.INPUT_NOT_FOUND, f"cannot read options.auth_file {path}: {err.strerror or err}", "name a readable file holding the credentials") from None
    if not lines or not lines[0].strip():
        raise HubError(ErrorCode.INVALID_REQUEST, f"options.auth_file {path} is empty", "put the credentials on its first line")
    return lines[0].strip()


def session_for(job: Job) -> Any:
    """A requests session carrying the job's authentication."""
    import requests

    session = requests.Session()
    secret = credentials(job)
    if job.option("auth") == "basic" and secret is not None:
        user, colon, password = secret.partition(":")
        if not colon:
            raise HubError(ErrorCode.INVALID_REQUEST, "basic credentials must read user:password", "write them as user:password in auth_env or auth_file")
        session.auth = (user, password)
    elif secret is not None:
        session.headers["Authorization"] = f"Bearer {secret}"
    return session


class WebPeer:
    """The DICOMweb service of a job, and its deadline (options.timeout)."""

    def __init__(self, job: Job) -> None:
        try:
            from dicomweb_client.api import DICOMwebClient
        except ImportError:
            raise HubError(ErrorCode.BACKEND_UNAVAILABLE, "dicomweb-client is not installed", INSTALL_HINT) from None
        self.url = str(job.option("url")).rstrip("/")
        total = job.option("timeout")
        self.deadline = time.monotonic() + float(total) if total else None
        wait = float(job.option("http_timeout"))
        if total:
            wait = min(wait, float(total))
        self.wait = wait
        self.session = session_for(job)
        self.client = DICOMwebClient(self.url, session=self.session, timeout=wait)
        self.client.set_http_retry_params(retry=False)  # a failure is reported at once, with its status

    def search(self, resource: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """A QIDO-RS GET. Built here rather than by dicomweb-client, which percent-encodes the
        wildcards (`*` as %2A) that some servers (Orthanc's plugin 1.7) then take literally;
        `*`, `?` and `,` are valid as they are in a query string (RFC 3986)."""
        from urllib.parse import urlencode

        url = f"{self.url}/{resource}?{urlencode(params, safe='*?,')}"
        response = self.session.get(url, headers={"Accept": "application/dicom+json"}, timeout=self.wait)
        response.raise_for_status()
        if response.status_code == 204 or not response.content:
            return []
        try:
            return list(response.json())
        except ValueError:
            body = " ".join(response.text.split())[:MESSAGE_LIMIT]
            raise HubError(ErrorCode.NETWORK_ERROR, f"QIDO-RS at {self.url} answered HTTP {response.status_code} with something that is not DICOM JSON: {body}",
                           "check that options.url is the DICOMweb root (e.g. .../dicom-web)") from None

    def call(self, doing: str, action: Callable[[], T]) -> T:
        """Run one HTTP exchange; its failures become `network_error` (or `timeout`)."""
        with http_errors(self, doing):
            return action()

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


@contextmanager
def http_errors(peer: WebPeer, doing: str) -> Iterator[None]:
    import requests

    try:
        yield
    except requests.HTTPError as err:
        raise http_failure(peer, doing, err.response) from None
    except requests.Timeout:
        code = ErrorCode.TIMEOUT if peer.out_of_time() else ErrorCode.NETWORK_ERROR
        raise HubError(code, f"{doing} at {peer.url}: no answer in time", "raise options.http_timeout (or options.timeout)") from None
    except requests.ConnectionError as err:
        raise HubError(ErrorCode.NETWORK_ERROR, f"{doing}: {peer.url} could not be reached: {root_cause(err)}", "check the URL and that the server is running") from None
    except requests.RequestException as err:
        raise HubError(ErrorCode.NETWORK_ERROR, f"{doing} at {peer.url} failed: {type(err).__name__}: {err}", "check the URL") from None


def http_failure(peer: WebPeer, doing: str, response: Any) -> HubError:
    """An HTTP error status as `network_error`: the status, its reason and the server's message."""
    status = getattr(response, "status_code", None)
    reason = getattr(response, "reason", "") or ""
    body = " ".join((getattr(response, "text", "") or "").split())[:MESSAGE_LIMIT]
    hints = {401: "check the credentials (options.auth, auth_env, auth_file)", 403: "the credentials are not allowed this request",
             404: "check the URL (the DICOMweb root) and the UIDs", 400: "the server refused the query; check its keys and values"}
    message = f"{doing} at {peer.url}: HTTP {status} {reason}".rstrip()
    return HubError(ErrorCode.NETWORK_ERROR, f"{message}: {body}" if body else message, hints.get(status or 0, "see the server's log"))


def root_cause(err: BaseException) -> str:
    """The innermost reason of a connection error (e.g. 'Connection refused')."""
    for _ in range(10):
        inner = err.__cause__ or next((a for a in err.args if isinstance(a, BaseException)), None)
        if inner is None or inner is err:
            break
        err = inner
    text = str(getattr(err, "reason", None) or err)
    return text.split("] ", 1)[-1] if "] " in text else text
