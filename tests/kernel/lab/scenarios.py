"""The lab's scenarios: what each boot does inside the guest.

A scenario is a function `(script, ports) -> None` that adds steps to the
guest's `/init`; `ports` are the host receiver's ports (the guest sends to
`10.0.2.2:<port>`). Several tests share one boot: a boot costs seconds, a
test only reads what the boot left.

| scenario   | targets                                                   | then          |
|------------|-----------------------------------------------------------|---------------|
| `modparam` | `netconsole=` basic, extended, extended+release (3 ports) | sysrq `c`     |
| `configfs` | wrong setups first; then t1 extended+userdata(+sysdata on | power off     |
|            | 7.x), t2 basic; userdata changed, removed, ~3 KB of it    |               |
| `burst`    | `netconsole=` basic + extended; 2 writers x 10,000 records | power off     |
| `python`   | Python in the guest: `python3 -m netconsole`, a kmsg write | power off     |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lab._guest import GATEWAY_MAC, HOST_IP, Script

Steps = Callable[[Script, list[int]], None]

# A marker record: lines from here on are what a comparison window ends with.
END_MARK = "lab: end of scenario records"

BURST_WRITERS = ("a", "b")
BURST_PER_WRITER = 10_000
# /dev/kmsg takes at most 1024 bytes per write, `<6>` and the newline included.
KMSG_MAX_TEXT = 1020


@dataclass(frozen=True, slots=True)
class LabRecord:
    """A record the scenario writes to /dev/kmsg, and what the kernel makes of it."""

    prefix: str
    text: bytes
    facility: int
    level: int


def _long(tag: str, length: int) -> bytes:
    head = f"lab: LEN{length} ".encode()
    body = b"".join(b"|%04d:abcd" % i for i in range(0, length, 10))
    return (head + body)[:length]


# Default loglevel of a /dev/kmsg write without a prefix (default_message_loglevel).
DEFAULT_LEVEL = 4

LAB_RECORDS: tuple[LabRecord, ...] = (
    *(LabRecord(f"<{n}>", f"lab: level{n} via /dev/kmsg".encode(), 1, n) for n in range(8)),
    LabRecord("", b"lab: no level prefix (default level, facility user)", 1, DEFAULT_LEVEL),
    LabRecord("<14>", b"lab: facility user(1) level info (<14>)", 1, 6),
    LabRecord("<30>", b"lab: facility daemon(3) level info (<30>)", 3, 6),
    LabRecord("<6>", b"lab: tab[\t] backslash[\\] utf8[caf\xc3\xa9] del[\x7f] pct[%] q[']", 1, 6),
    LabRecord("<6>", b"lab: embedded newline first\nsecond line of the same write", 1, 6),
    LabRecord("<6>", b"lab: trailing spaces   ", 1, 6),
    *(LabRecord("<6>", _long("LEN", n), 1, 6) for n in (900, 975, 990, 1000, KMSG_MAX_TEXT)),
)


def nc_param(port: int, flags: str = "") -> str:
    """One `netconsole=` target towards the host receiver on `port`."""
    return f"{flags}@/eth0,{port}@{HOST_IP}/{GATEWAY_MAC}"


def write_lab_records(s: Script) -> None:
    for rec in LAB_RECORDS:
        s.kmsg(rec.text, rec.prefix)


def modparam(s: Script, ports: list[int]) -> None:
    """Three `netconsole=` targets: basic, extended, extended+release; then a panic."""
    s.setup()
    s.insmod_netconsole(";".join(
        [nc_param(ports[0]), nc_param(ports[1], "+"), nc_param(ports[2], "+r")]))
    write_lab_records(s)
    s.kmsg(END_MARK)
    # 7.x prints netconsole from a thread: let it catch up before the crash, so
    # that what is lost at the panic is the panic's own output, not a backlog.
    s.settle()
    s.crash()


SYSDATA = ("cpu_nr", "taskname", "release", "msgid")
BIG_USERDATA_TEXT = _long("LEN", 1000).replace(b"LEN1000", b"BIGUD")
WRONG_NODEV = "nosuch0"


def configfs(s: Script, ports: list[int]) -> None:
    """Wrong setups (reported on the console), then two configfs targets.

    ports[0] is only ever configured in the wrong setups: nothing may arrive there.
    """
    bad, p1, p2 = ports
    sysdata = SYSDATA if s.kernel.major >= 7 else ()
    s.setup(address=False)
    # A module parameter naming a device that does not exist.
    s.insmod_netconsole(nc_param(bad).replace("/eth0,", f"/{WRONG_NODEV},"), "insmod.nodev")
    s.sh("grep -q '^netconsole ' /proc/modules && rmmod netconsole; labrc rmmod.nodev $?")
    s.insmod_netconsole(None)
    # A configfs target on an interface that has no address yet.
    s.target("noaddr", port=bad, extended=True)
    s.sh("rmdir /sys/kernel/config/netconsole/noaddr; labrc noaddr.rmdir $?")
    # A configfs target on a device that does not exist.
    s.target("nodev", port=bad, dev="nosuch1", extended=True)
    s.sh("rmdir /sys/kernel/config/netconsole/nodev; labrc nodev.rmdir $?")
    s.address()
    s.target("t1", port=p1, extended=True, userdata={"host": "lab-guest", "key1": "value1"},
             sysdata=sysdata)
    s.kmsg("lab: cfs t1 enabled")
    s.target("t2", port=p2)
    s.kmsg("lab: cfs t2 enabled")
    write_lab_records(s)
    # 7.x attaches userdata when its printer thread sends a record, not when the
    # record is logged: let it catch up before each change.
    s.settle()
    s.userdata("t1", "key1", "value2")
    s.kmsg("lab: cfs after changing key1 while enabled")
    s.settle()
    s.userdata("t1", "host", None)
    s.kmsg("lab: cfs after removing userdata host")
    s.settle()
    for i in range(14):  # 15 entries with key1 (6.12 allows 16)
        s.userdata("t1", f"k{i:02d}", f"{i:02d}-" + "v" * 185)
    s.kmsg("lab: cfs short message with ~3KB of userdata")
    s.kmsg(BIG_USERDATA_TEXT)
    s.settle()
    s.enable("t1", 0)
    s.kmsg("lab: cfs t1 disabled")
    s.kmsg(END_MARK)
    s.settle()


def burst(s: Script, ports: list[int]) -> None:
    """Two writers of 10,000 records each, as fast as /dev/kmsg takes them."""
    s.setup()
    s.insmod_netconsole(";".join([nc_param(ports[0]), nc_param(ports[1], "+")]))
    s.sh(
        "burst() {",
        "    i=0; exec 3>/dev/kmsg",
        f"    while [ $i -lt {BURST_PER_WRITER} ]; do",
        '        echo "<5>burst $1 $i" >&3; i=$((i + 1))',
        "    done",
        "}",
        'lab "burst start uptime $(cut -d" " -f1 /proc/uptime)"',
        " ".join(f"burst {w} &" for w in BURST_WRITERS) + " wait",
        'lab "burst end uptime $(cut -d" " -f1 /proc/uptime)"',
    )
    s.kmsg(END_MARK)
    # 7.x sends from a printer thread, far behind the writers.
    s.settle()


PY_HELLO = b"hello from python"
PY_KMSG_SCRIPT = f"""\
import os
fd = os.open("/dev/kmsg", os.O_WRONLY)
os.write(fd, b"<5>{PY_HELLO.decode()}\\n")
os.close(fd)
print("LAB: python wrote to /dev/kmsg")
"""


def python(s: Script, ports: list[int]) -> None:
    """Our own tools in the guest (needs the Python layers on the image).

    More commands (`netconsole setup`, `send --via kmsg`, `doctor --collect`)
    go here as further `python_command` steps, each with its own LABRC name.
    """
    s.setup()
    s.insmod_netconsole(nc_param(ports[0], "+"))
    s.extra_files["lab/kmsg_hello.py"] = (PY_KMSG_SCRIPT.encode(), 0o644)
    python_command(s, "version", "python3 -m netconsole --version")
    python_command(s, "kmsg", "python3 /lab/kmsg_hello.py")
    s.kmsg(END_MARK)
    s.settle()


def python_command(s: Script, name: str, command: str) -> None:
    """Run one command in the guest; its output goes to lab.log between markers."""
    s.lab(f"py-begin {name}: {command}")
    s.sh(f"{command}; labrc py.{name} $?")
    s.lab(f"py-end {name}")


SCENARIOS: dict[str, tuple[Steps, int]] = {
    "python": (python, 1),
    "modparam": (modparam, 3),
    "configfs": (configfs, 3),
    "burst": (burst, 2),
}
