"""`dicom-hub scp`: run a Storage SCP (C-STORE and C-ECHO, plus C-FIND/C-GET/C-MOVE of what it
stored) until SIGINT or SIGTERM.

Files land in `OUTPUT/<StudyUID>/<SeriesUID>/<SOPUID>.dcm`; one line per association on stderr.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading

_AE_TITLE = re.compile(r"^(?! +$)[ -\[\]-~]{1,16}$")


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dicom_hub.contract.errors import HubError
    from dicom_hub.python_backend.network.scp import StorageSCP

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    scp = StorageSCP(Path(args.output).expanduser().absolute(), args.port, args.host, args.aet, tuple(args.allow_aet), log,
                     move_destinations=tuple(args.move_destination))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        scp.start()
    except HubError as err:
        log(f"error: {err.message} ({err.hint})")
        return 1
    except OSError as err:
        log(f"error: cannot listen on {args.host}:{args.port}: {err.strerror or err}")
        return 1
    allowed = ", ".join(args.allow_aet) or "any calling AE"
    log(f"listening on {args.host}:{args.port} as {args.aet} (accepting {allowed}), saving under {scp.root}")
    while not stop.wait(0.5):
        pass
    scp.stop()
    log(f"stopped: {scp.stored_total} instances stored")
    return 0
