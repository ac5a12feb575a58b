"""`netconsole forward`: the kernel's extended netconsole, from userspace.

Reads `/dev/kmsg` (and the pstore dumps of the previous boot) and sends each
record to UDP receivers exactly as an extended netconsole target would, with
the encoder of `netconsole.wire`. Layout:

* `kmsg`: parse `/dev/kmsg` records; read them one `read()` at a time.
* `policy`: level filter, token-bucket rate limit, crash output always passes.
* `sender`: receivers, per-target msgid and bounded backlog, the UDP transport.
* `pstore`: find and parse dmesg dumps (ramoops, EFI, ERST; `.enc.z`).
* `state`: the resume point and sent dumps, saved atomically.
* `core`: the sans-IO `Forwarder` tying policy, encoding and targets together.
* `run`: the I/O loop, `forward(options)`.
"""

from netconsole.forward.core import Forwarder
from netconsole.forward.kmsg import (
    KmsgError,
    KmsgReader,
    KmsgRecord,
    ReadStatus,
    open_kmsg,
    parse_kmsg,
)
from netconsole.forward.policy import (
    CRASH_WINDOW_USEC,
    Policy,
    PolicyConfig,
    TokenBucket,
    Verdict,
    is_crash_line,
)
from netconsole.forward.pstore import (
    DEFAULT_PSTORE_DIRS,
    PstoreDump,
    find_dumps,
    parse_dump,
    read_dump,
)
from netconsole.forward.run import ForwardOptions, ForwardStats, forward
from netconsole.forward.sender import (
    DEFAULT_LOCAL_PORT,
    DEFAULT_REMOTE_PORT,
    SYSDATA_NAMES,
    AddressError,
    Backlog,
    EncodeConfig,
    Receiver,
    Target,
    UdpTransport,
    outgoing,
    parse_receiver,
)
from netconsole.forward.state import ForwardState, StateError, load_state, save_state

__all__ = [
    "CRASH_WINDOW_USEC",
    "DEFAULT_LOCAL_PORT",
    "DEFAULT_PSTORE_DIRS",
    "DEFAULT_REMOTE_PORT",
    "SYSDATA_NAMES",
    "AddressError",
    "Backlog",
    "EncodeConfig",
    "ForwardOptions",
    "ForwardState",
    "ForwardStats",
    "Forwarder",
    "KmsgError",
    "KmsgReader",
    "KmsgRecord",
    "Policy",
    "PolicyConfig",
    "PstoreDump",
    "ReadStatus",
    "Receiver",
    "StateError",
    "Target",
    "TokenBucket",
    "UdpTransport",
    "Verdict",
    "find_dumps",
    "forward",
    "is_crash_line",
    "load_state",
    "open_kmsg",
    "outgoing",
    "parse_dump",
    "parse_kmsg",
    "parse_receiver",
    "read_dump",
    "save_state",
]
