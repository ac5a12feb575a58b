"""A real rsyslogd (Debian's `rsyslog`) started by a test, on loopback only.

It runs in the foreground (`-n`) with its own configuration, work directory
and pid file under the test's tmp directory, so no system configuration is
read or touched. It receives RFC 5424 over TCP and UDP on one port, parses the
structured data with `mmpstrucdata`, and writes one JSON object per message:
the properties rsyslog parsed (severity, facility, hostname, app-name,
structured data, msg), so a test sees what rsyslog understood, not what was sent.
Its UDP socket buffer is large (rsyslogd runs as root: SO_RCVBUFFORCE), as a
syslog server's should be: a burst of a boot's records must not overflow it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.integration.listen_harness import _die_with_parent, free_tcp_port

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"

_CONFIG = """\
global(workDirectory="{work}" maxMessageSize="64k"
       parser.escapeControlCharactersOnReceive="off")
module(load="imtcp")
module(load="imudp")
module(load="mmpstrucdata")
input(type="imtcp" address="127.0.0.1" port="{port}")
input(type="imudp" address="127.0.0.1" port="{port}" rcvbufSize="8m")
template(name="parsed" type="list" option.jsonf="on") {{
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="time" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="parsed" name="$!" format="jsonf")
}}
action(type="mmpstrucdata")
action(type="omfile" file="{out}" template="parsed")
"""


class Rsyslog:
    """rsyslogd on 127.0.0.1:`port` (TCP and UDP), writing `out` as JSON lines."""

    def __init__(self, tmp: Path, port: int | None = None) -> None:
        self.dir = tmp / "rsyslog"
        self.dir.mkdir(exist_ok=True)
        self.port = port or free_tcp_port()
        self.out = self.dir / "out.jsonl"
        self.conf = self.dir / "rsyslog.conf"
        self.conf.write_text(_CONFIG.format(work=self.dir, port=self.port, out=self.out))
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        err = (self.dir / "stderr").open("ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.dir / "rsyslogd.pid")],
            stdout=err, stderr=err, start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        while True:  # TCP first: a connection accepted means the inputs are up
            assert self.proc.poll() is None, (self.dir / "stderr").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "rsyslogd did not listen"
                time.sleep(0.05)
        self._probe_udp(deadline)

    def _probe_udp(self, deadline: float) -> None:
        """Wait until a UDP message is written: imudp may start after imtcp."""
        marker = f"probe-{time.monotonic_ns()}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not any(m["msg"] == marker for m in self.messages(app="probe")):
                assert time.monotonic() < deadline, "rsyslogd did not take UDP"
                s.sendto(f"<14>1 - - probe - - - {marker}".encode(), ("127.0.0.1", self.port))
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
            self.proc = None

    def messages(self, app: str = "kernel") -> list[dict[str, Any]]:
        """What rsyslog wrote, of one APP-NAME; `parsed` is its parsed SD as a dict."""
        if not self.out.exists():
            return []
        out = []
        for line in self.out.read_bytes().decode("utf-8", "surrogateescape").splitlines():
            if not line.strip():
                continue
            try:
                m = json.loads(line)
            except json.JSONDecodeError:  # a line being written
                continue
            if m.get("app") != app:
                continue
            parsed = m.get("parsed") or "{}"
            m["parsed"] = json.loads(parsed) if isinstance(parsed, str) else parsed
            out.append(m)
        return out
