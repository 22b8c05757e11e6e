"""`dicom-hub scp`: run a Storage SCP (C-STORE and C-ECHO, plus C-FIND/C-GET/C-MOVE of what it
stored) until SIGINT or SIGTERM.

Files land in `OUTPUT/<StudyUID>/<SeriesUID>/<SOPUID>.dcm`; one line per association (or refusal)
on stderr. Limits (associations, PDU, instance size, idle timeouts) and TLS are options.
A signal aborts open associations and the process exits within seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

_AE_TITLE = re.compile(r"^(?! +$)[ -\[\]-~]{1,16}$")
_SIZE = re.compile(r"^(\d+)([KMG]?)$", re.I)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def ae_title(text: str) -> str:
    if not _AE_TITLE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AE title (1-16 printable characters, no backslash)")
    return text


def port_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def move_destination(text: str) -> str:
    from dicom_hub.python_backend.network.qr_scp import parse_destination

    try:
        parse_destination(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def env_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an environment variable name")
    return text


def byte_size(text: str) -> int:
    """`2G`, `256M`, `64K` or a number of bytes; 0 means no limit."""
    match = _SIZE.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (a number of bytes, or with K, M or G, e.g. 512M; 0 = no limit)")
    return int(match[1]) * _UNITS[match[2].upper()]


def pdu_size(text: str) -> int:
    """A Maximum Length Received: 0 (no limit) or at least 4096 bytes, as DCMTK allows."""
    value = bounded(int, 0, 2**32 - 1)(text)
    if 0 < value < 4096:
        raise argparse.ArgumentTypeError(f"{text} is too small for a PDU size (0, or 4096 to 4294967295)")
    return value


def bounded(kind: type, low: float, high: float | None = None) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` within [low, high]."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is out of range ({low:g} to {high:g})" if high is not None else f"{text} must be at least {low:g}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dicom_hub.python_backend.network.scp_limits import ScpLimits

    defaults = ScpLimits()
    parser.add_argument("--port", type=port_number, required=True, help="TCP port to listen on")
    parser.add_argument("--output", required=True, help="folder receiving <StudyUID>/<SeriesUID>/<SOPUID>.dcm")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 = every interface)")
    parser.add_argument("--aet", type=ae_title, default="DICOM-HUB", help="our AE title (default DICOM-HUB)")
    parser.add_argument(
        "--allow-aet", type=ae_title, action="append", default=[], metavar="AET",
        help="accept associations only from this calling AE title (repeat for more; default: any)",
    )
    parser.add_argument(
        "--move-destination", type=move_destination, action="append", default=[], metavar="AET=HOST:PORT",
        help="a C-MOVE destination of the Query/Retrieve service (repeat for more; others are refused with 0xA801)",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-associations", type=bounded(int, 1, 1000), default=defaults.max_associations, metavar="N",
                        help=f"concurrent associations; more are rejected (local limit exceeded) (default {defaults.max_associations})")
    limits.add_argument("--max-pdu", type=pdu_size, default=defaults.max_pdu, metavar="BYTES",
                        help=f"largest PDU we receive, announced to peers: 4096 to 4294967295, or 0 = no limit (default {defaults.max_pdu})")
    limits.add_argument("--max-instance-size", type=byte_size, default=defaults.max_instance_bytes, metavar="SIZE",
                        help="refuse larger instances with C-STORE status 0xA700, e.g. 512M; 0 = no limit (default 2G)")
    limits.add_argument("--acse-timeout", type=bounded(float, 0.1), default=defaults.acse_timeout, metavar="S",
                        help=f"seconds a new connection may take to request an association (default {defaults.acse_timeout:g})")
    limits.add_argument("--idle-timeout", type=bounded(float, 0.1), default=defaults.idle_timeout, metavar="S",
                        help=f"abort an association silent for this many seconds (default {defaults.idle_timeout:g})")
    limits.add_argument("--dimse-timeout", type=bounded(float, 0.1), default=defaults.dimse_timeout, metavar="S",
                        help=f"seconds to wait for the rest of a DIMSE message (default {defaults.dimse_timeout:g})")
    tls = parser.add_argument_group("DICOM over TLS (PS3.15 Annex B); all files PEM")
    tls.add_argument("--tls-cert", metavar="FILE", help="our certificate: listen with TLS only (needs --tls-key)")
    tls.add_argument("--tls-key", metavar="FILE", help="the private key of --tls-cert")
    tls.add_argument("--tls-key-password-env", metavar="VAR", type=env_name, help="environment variable holding the password of an encrypted --tls-key")
    tls.add_argument("--tls-ca", metavar="FILE", help="require client certificates signed by these CA certificates (mutual TLS)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dicom_hub.contract.errors import HubError
    from dicom_hub.python_backend.network.scp import StorageSCP
    from dicom_hub.python_backend.network.scp_limits import ScpLimits

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    limits = ScpLimits(args.max_associations, args.max_pdu, args.max_instance_size, args.acse_timeout, args.idle_timeout, args.dimse_timeout)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        context = _tls_context(args)
        scp = StorageSCP(Path(args.output).expanduser().absolute(), args.port, args.host, args.aet, tuple(args.allow_aet), log,
                         limits=limits, ssl_context=context, move_destinations=tuple(args.move_destination))
        scp.start()
    except HubError as err:
        log(f"error: {err.message} ({err.hint})")
        return 1
    except OSError as err:
        log(f"error: cannot listen on {args.host}:{args.port}: {err.strerror or err}")
        return 1
    allowed = ", ".join(args.allow_aet) or "any calling AE"
    secure = (" over TLS, client certificates required" if args.tls_ca else " over TLS") if context else ""
    log(f"listening on {args.host}:{args.port}{secure} as {args.aet} (accepting {allowed}), saving under {scp.root}")
    while not stop.wait(0.5):
        pass
    lingering = scp.stop()
    log(f"stopped: {scp.stored_total} instances stored")
    if lingering:  # threads blocked in the network must not keep the process alive
        log(f"{lingering} connection thread(s) did not end; exiting anyway")
        sys.stderr.flush()
        os._exit(0)
    return 0


def _tls_context(args: argparse.Namespace) -> Any:
    """The server's SSL context when --tls-cert/--tls-key are given, else None (plain TCP)."""
    from dicom_hub.contract.dicom.network.tls import TlsSettings
    from dicom_hub.contract.errors import ErrorCode, HubError

    if not (args.tls_cert or args.tls_key or args.tls_ca or args.tls_key_password_env):
        return None
    if not (args.tls_cert and args.tls_key):
        raise HubError(ErrorCode.INVALID_REQUEST, "TLS needs our certificate and its key", "give --tls-cert and --tls-key")
    return TlsSettings.checked(args.tls_ca, args.tls_cert, args.tls_key, args.tls_key_password_env).server_context()
