"""Development mail sink: an SMTP server on 127.0.0.1 that keeps every message as a file.

``python -m tousu_feedback.mailsink [--port 8025] [--dir .data/mail]``. `make run` starts it
and points the email channel at it, so a developer reads what the customer got. Never for
production: it accepts mail from anyone who can reach the port, and relays nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class MaildirHandler:
    """Writes each accepted message to ``<dir>/<UTC time>-<id>.eml``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        content: Any = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else str(content).encode()
        path.write_bytes(data)
        return "250 Message accepted for delivery"


def start(directory: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    """A running sink (tests stop it with ``.stop()``)."""
    controller = Controller(MaildirHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(description="Development mail sink.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path(".data/mail"))
    args = parser.parse_args()
    controller = start(args.dir, args.host, args.port)
    print(f"mail sink on {args.host}:{args.port}, writing to {args.dir}", flush=True)

    async def wait() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    try:
        asyncio.run(wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
