"""Proving delivery: a nonce through the kernel, asked for at the receiver.

`transmit_errors == 0` proves nothing (§3.5, §5.5), and netconsole has no
acknowledgement, so the only proof is the message at the other end. `verify`
writes `<L>netconsole-setup nonce=N target=T` to /dev/kmsg, where every enabled
netconsole target picks it up (at a level the console loglevel lets through),
then asks `netconsole listen`'s API `GET /api/v1/seen?nonce=N` until it says
yes or the time is up. Without a reachable API it says what to look for.
"""

from __future__ import annotations

import enum
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from netconsole._hostport import format_hostport, parse_hostport
from netconsole.host.write import HostWriter
from netconsole.setup.send import kmsg_line

DEFAULT_API_PORT = 6680
VERIFY_TIMEOUT = 10.0
_POLL = 0.25


class Outcome(enum.Enum):
    SEEN = "seen"
    """The receiver stored the nonce: delivery proven."""
    NOT_SEEN = "not-seen"
    """The receiver answered, but never had the nonce."""
    NO_API = "no-api"
    """The receiver's API did not answer: look by hand."""
    NOT_SENT = "not-sent"
    """The nonce could not be written (or no level passes the console loglevel)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    outcome: Outcome
    nonce: str
    message: str
    """The text written to /dev/kmsg (without the `<L>` prefix)."""
    level: int | None
    api: str | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SEEN


def make_nonce() -> str:
    return secrets.token_hex(6)


def api_url(host_port: str | None, receiver_ip: str) -> str:
    """`HOST:PORT` (or `[v6]:PORT`, or a URL), default the receiver's address on
    port 6680.

    Raises:
        HostPortError: `host_port` is neither a URL nor `HOST[:PORT]`.
    """
    if not host_port:
        return f"http://{format_hostport(receiver_ip, DEFAULT_API_PORT)}"
    if host_port.startswith(("http://", "https://")):
        return host_port.rstrip("/")
    return f"http://{parse_hostport(host_port, default_port=DEFAULT_API_PORT)}"


def ask_seen(api: str, nonce: str, since: float | None = None,
             timeout: float = 3.0) -> bool | None:
    """The receiver's answer: True/False, or None when it cannot be asked."""
    query = {"nonce": nonce}
    if since is not None:
        query["since"] = str(int(since))
    url = f"{api}/api/v1/seen?{urllib.parse.urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            data = json.loads(r.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    if not isinstance(data, dict) or "seen" not in data:
        return None
    return bool(data["seen"])


def look_for(nonce: str, receiver: str) -> str:
    return (f"Look on the receiver {receiver} for a record containing "
            f"'nonce={nonce}': `netconsole search {nonce}` where `netconsole listen` runs, "
            f"or `tcpdump -A -n udp port {receiver.rsplit(':', 1)[-1]} | grep {nonce}`.")


def verify(writer: HostWriter, *, target: str, receiver: str, api: str | None,
           level: int | None, timeout: float = VERIFY_TIMEOUT,
           nonce: str | None = None,
           sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic,
           wall: Callable[[], float] = time.time) -> Verification:
    """Write a nonce through /dev/kmsg and ask the receiver whether it arrived.

    Args:
        target: the target name, put in the message.
        receiver: `ip:port`, for the instructions.
        api: the receiver API base URL (None: do not ask, only instruct).
        level: the printk level of the message (None: none passes the loglevel).
        timeout: how long to keep asking.
    """
    nonce = nonce or make_nonce()
    message = f"netconsole-setup nonce={nonce} target={target}"
    if level is None:
        return Verification(
            outcome=Outcome.NOT_SENT, nonce=nonce, message=message, level=None, api=api,
            detail="console_loglevel lets only emergencies through; raise it with "
            "--loglevel 6 so a test message can reach netconsole")
    since = wall() - 3600  # tolerant of clock skew between this host and the receiver
    try:
        writer.kmsg(kmsg_line(message, level))
    except OSError as exc:
        return Verification(outcome=Outcome.NOT_SENT, nonce=nonce, message=message,
                            level=level, api=api,
                            detail=f"writing /dev/kmsg failed: {exc.strerror}")
    if api is None:
        return Verification(outcome=Outcome.NO_API, nonce=nonce, message=message, level=level,
                            api=None, detail=look_for(nonce, receiver))
    deadline = clock() + timeout
    answered = False
    while True:
        got = ask_seen(api, nonce, since)
        if got:
            return Verification(outcome=Outcome.SEEN, nonce=nonce, message=message,
                                level=level, api=api,
                                detail=f"the receiver stored nonce={nonce}")
        answered = answered or got is not None
        if clock() >= deadline:
            break
        sleep(_POLL)
    if answered:
        return Verification(
            outcome=Outcome.NOT_SEEN, nonce=nonce, message=message, level=level, api=api,
            detail=f"the receiver at {api} answered but has not stored nonce={nonce} after "
            f"{timeout:g}s: the datagram did not arrive (wrong MAC, firewall, or the "
            "receiver listens on another port). `netconsole doctor` checks this host.")
    return Verification(
        outcome=Outcome.NO_API, nonce=nonce, message=message, level=level, api=api,
        detail=f"the receiver API {api} did not answer (run `netconsole listen --http "
        f"0.0.0.0:{DEFAULT_API_PORT}` there, or pass --receiver-api). "
        + look_for(nonce, receiver))
