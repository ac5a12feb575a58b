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
| `listen`   | like `modparam` (3 targets), then 2 writers x 3,000 records; | power off   |
|            | received by the real `netconsole listen` (ListenReceiver)  |               |
| `python`   | Python in the guest: `python3 -m netconsole`, a kmsg write; | power off    |
|            | `doctor --collect` healthy, via a gateway, without address |               |
| `netpoll`  | an HSR device (IFF_DISABLE_NETPOLL): netconsole= and configfs | power off   |
|            | on it fail, doctor; on 6.12 np_shim on eth0/eth1/hsr0      |               |
| `warn_oops`| 6.12, basic + extended; labtrig.ko: WARN, 80 ms, NULL write | panic (oops) |
|            | with panic_on_oops=1; received by `netconsole listen`      |               |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab._guest import CONFIGFS, GATEWAY_MAC, HOST_IP, Script

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


def write_burst(s: Script, writers: tuple[str, ...], per_writer: int) -> None:
    """`writers` shells writing `<5>burst <w> <i>` to /dev/kmsg as fast as it takes them."""
    s.sh(
        "burst() {",
        "    i=0; exec 3>/dev/kmsg",
        f"    while [ $i -lt {per_writer} ]; do",
        '        echo "<5>burst $1 $i" >&3; i=$((i + 1))',
        "    done",
        "}",
        'lab "burst start uptime $(cut -d" " -f1 /proc/uptime)"',
        " ".join(f"burst {w} &" for w in writers) + " wait",
        'lab "burst end uptime $(cut -d" " -f1 /proc/uptime)"',
    )


def burst(s: Script, ports: list[int]) -> None:
    """Two writers of 10,000 records each, as fast as /dev/kmsg takes them."""
    s.setup()
    s.insmod_netconsole(";".join([nc_param(ports[0]), nc_param(ports[1], "+")]))
    write_burst(s, BURST_WRITERS, BURST_PER_WRITER)
    s.kmsg(END_MARK)
    # 7.x sends from a printer thread, far behind the writers.
    s.settle()


LISTEN_PER_WRITER = 3_000
# Records the kernel logs but no console prints (level 6 with console_loglevel 5):
# an extended target's seq skips them, exactly this many.
QUIET_BEGIN = "lab: console loglevel 5 from here"
QUIET_END = "lab: console loglevel 8 again"
QUIET_RECORDS = tuple(f"lab: below the console loglevel {i}" for i in range(7))


def listen(s: Script, ports: list[int]) -> None:
    """For the real `netconsole listen`: basic, extended, extended+release targets as one
    module parameter (they replay the log from seq 0), the lab records (levels, escapes,
    900-1020-byte lines: fragments), QUIET_RECORDS below the console loglevel (logged,
    never sent: a known seq gap), then a burst of 2 x 3,000 records; no panic."""
    s.setup()
    s.insmod_netconsole(";".join(
        [nc_param(ports[0]), nc_param(ports[1], "+"), nc_param(ports[2], "+r")]))
    write_lab_records(s)
    s.kmsg(QUIET_BEGIN, "<4>")
    # 7.x decides what to suppress when its printer threads emit: let them catch up
    # at each change of the console loglevel.
    s.settle()
    s.sh("echo 5 > /proc/sys/kernel/printk")
    s.kmsg_many(QUIET_RECORDS, "<6>")
    s.settle()
    s.sh("sleep 1", "echo 8 > /proc/sys/kernel/printk")
    s.kmsg(QUIET_END, "<4>")
    write_burst(s, BURST_WRITERS, LISTEN_PER_WRITER)
    s.kmsg(END_MARK)
    s.settle()


PY_HELLO = b"hello from python"
PY_KMSG_SCRIPT = f"""\
import os
fd = os.open("/dev/kmsg", os.O_WRONLY)
os.write(fd, b"<5>{PY_HELLO.decode()}\\n")
os.close(fd)
print("LAB: python wrote to /dev/kmsg")
"""


# The `gateway` case: the receiver 10.0.2.2 reached through a router, 10.0.2.1 (a
# host route). It must stay 10.0.2.2: QEMU's slirp (libslirp 4.7) delivers only
# its host address to the host's loopback; any other destination it sends out to
# the real network, which the lab must never do.
GW_ROUTER = "10.0.2.1"
GW_RECORDS = tuple(f"lab: via gateway {i}" for i in range(5))
SNAPSHOTS = ("healthy", "gateway", "noaddr")
SNAPSHOT_BEGIN = "snapshot-begin"
SNAPSHOT_END = "snapshot-end"


def doctor_collect(s: Script, name: str) -> None:
    """`netconsole doctor --collect` in the guest; the tarball, base64, to lab.log
    between `LAB: snapshot-begin <name>` and `LAB: snapshot-end <name>`."""
    path = f"/tmp/{name}.tar.gz"
    python_command(s, f"collect.{name}", f"python3 -m netconsole doctor --collect {path}")
    s.lab(f"{SNAPSHOT_BEGIN} {name}")
    s.sh(f"base64 {path}")
    s.lab(f"{SNAPSHOT_END} {name}")


def python(s: Script, ports: list[int]) -> None:
    """Our own tools in the guest (needs the Python layers on the image).

    ports: 0 the healthy configfs target `ok` (extended), 1 the target `gw` across
    the gateway with the default (broadcast) remote MAC, 2 the target `noaddr`
    (never sends). Three `doctor --collect` snapshots, each taken in the state
    whose outcome the tests compare with doctor's verdict:

    * `healthy`: `ok` enabled and sending;
    * `gateway`: `ok` gone, a host route to 10.0.2.2 via GW_ROUTER, `gw` enabled
      with the kernel's default remote MAC (broadcast);
    * `noaddr`: eth0's address flushed, `noaddr` configured but not yet enabled
      (doctor's prediction), then enabled: the kernel refuses.
    """
    ok, gw, noaddr = ports
    s.setup()
    # The receiver's MAC in the neighbour table, as on any host that talks to it
    # (slirp answers the ARP and the echo itself).
    s.sh(f"ping -c 1 -W 2 {HOST_IP} >/dev/null; labrc ping $?",
         "lab \"neigh: $(ip neigh show dev eth0)\"")
    s.insmod_netconsole(None)
    s.target("ok", port=ok, extended=True)
    s.extra_files["lab/kmsg_hello.py"] = (PY_KMSG_SCRIPT.encode(), 0o644)
    python_command(s, "version", "python3 -m netconsole --version")
    python_command(s, "kmsg", "python3 /lab/kmsg_hello.py")
    s.kmsg(END_MARK)
    s.settle()
    doctor_collect(s, "healthy")
    s.enable("ok", 0)
    s.sh(f"rmdir {CONFIGFS}/ok; labrc ok.rmdir $?")
    s.sh(f"ip route add {HOST_IP}/32 via {GW_ROUTER} dev eth0; labrc gw.route $?",
         f"lab \"route: $(ip route get {HOST_IP})\"")
    s.target("gw", port=gw, remote_mac=None, extended=True)
    s.sh(f"lab \"gw remote_mac: $(cat {CONFIGFS}/gw/remote_mac)\"")
    s.kmsg_many(GW_RECORDS)
    s.settle()
    doctor_collect(s, "gateway")
    s.enable("gw", 0)
    s.sh(f"rmdir {CONFIGFS}/gw; labrc gw.rmdir $?")
    s.sh("ip addr flush dev eth0", "lab \"eth0 after flush: $(ip -4 addr show dev eth0)\"")
    s.target("noaddr", port=noaddr, extended=True, enable=False)
    doctor_collect(s, "noaddr")
    s.enable("noaddr")
    s.kmsg("lab: after noaddr")


def python_command(s: Script, name: str, command: str) -> None:
    """Run one command in the guest; its output goes to lab.log between markers."""
    s.lab(f"py-begin {name}: {command}")
    s.sh(f"{command}; labrc py.{name} $?")
    s.lab(f"py-end {name}")


# --- issue 18: the seed failure on a real kernel, and np_shim -----------------------------

LAB_DIR = Path(__file__).parent
HSR_NET = "10.0.9"  # hsr0's own subnet: its targets point there, nothing is ever sent
SHIM_DIR = "/lab/np_shim"
SHIM_RECORDS = tuple(f"lab: with np_shim on eth0 {i}" for i in range(5))
UNSHIM_RECORDS = tuple(f"lab: np_shim unloaded {i}" for i in range(5))
RESHIM_RECORDS = tuple(f"lab: np_shim loaded again {i}" for i in range(3))
DOCTOR_JSON_BEGIN = "doctor-json-begin"
DOCTOR_JSON_END = "doctor-json-end"


def doctor_json(s: Script, name: str) -> None:
    """`netconsole doctor --json` on the live guest; the report to lab.log between
    `LAB: doctor-json-begin <name>` and `LAB: doctor-json-end <name>`."""
    path = f"/tmp/doctor-{name}.json"
    python_command(s, f"doctor.{name}", f"python3 -m netconsole doctor --json > {path}")
    s.lab(f"{DOCTOR_JSON_BEGIN} {name}")
    s.sh(f"cat {path}")
    s.lab(f"{DOCTOR_JSON_END} {name}")


def hsr_device(s: Script) -> None:
    """hsr0 over two dummy ports, up, with an address (netpoll wants one before it
    gets to the device check)."""
    s.extra_files["lab/mkhsr.py"] = ((LAB_DIR / "mkhsr.py").read_bytes(), 0o644)
    s.sh(*(f"insmod /lib/modules/{m}.ko; labrc insmod.{m} $?"
           for m in s.kernel.insmod_chain("hsr")))
    s.sh(*(f"insmod /lib/modules/{m}.ko numdummies=2; labrc insmod.{m} $?"
           for m in s.kernel.insmod_chain("dummy")))
    s.sh("ip link set dummy0 up", "ip link set dummy1 up")
    python_command(s, "mkhsr", "python3 /lab/mkhsr.py hsr0 dummy0 dummy1")
    s.sh("ip link set hsr0 up; labrc hsr0.up $?", f"ip addr add {HSR_NET}.1/24 dev hsr0",
         'lab "hsr0: $(ip link show hsr0 | tr "\n" " ")"',
         'lab "hsr0 ports: $(ls -d /sys/class/net/hsr0/lower_* | tr "\n" " ")"')


def netpoll(s: Script, ports: list[int], *, shim: dict[str, bytes] | None = None) -> None:
    """netconsole on a device that sets IFF_DISABLE_NETPOLL (HSR), by module parameter
    and by configfs, with doctor's view of each; then, with `shim` (the files of
    `netconsole shim write --build`, 6.12 only), np_shim on hsr0, eth1 and eth0.

    ports: 0 the `netconsole=` target on hsr0, 1 the configfs target `hsr` on hsr0
    (nothing may arrive on either), 2 the extended target `ok` on eth0 that sends
    while np_shim is loaded, unloaded and loaded again.
    """
    p_param, p_cfs, p_ok = ports
    s.setup()
    hsr_device(s)
    # 1. by module parameter (Debian builds CONFIG_NETCONSOLE_DYNAMIC=y: the module
    # loads all the same, the target stays disabled)
    s.insmod_netconsole(f"@/hsr0,{p_param}@{HSR_NET}.2/", "nc.param.hsr0")
    s.sh('lab "modules: $(cut -d" " -f1 /proc/modules | tr "\n" " ")"')
    doctor_collect(s, "hsr-param")
    # 2. by configfs
    s.sh("rmmod netconsole; labrc rmmod.hsr $?")
    s.insmod_netconsole(None, "nc.plain")
    s.target("hsr", port=p_cfs, dev="hsr0", remote_ip=f"{HSR_NET}.2", remote_mac=None,
             extended=True, enable=False)
    s.sh(f"echo 1 > {CONFIGFS}/hsr/enabled 2>/tmp/enable.err; labrc hsr.enabled=1 $?",
         'lab "enable stderr: $(cat /tmp/enable.err)"')
    doctor_collect(s, "hsr-configfs")
    doctor_json(s, "hsr-configfs")
    if shim is None:
        return
    for name, data in shim.items():
        s.extra_files[f"{SHIM_DIR.lstrip('/')}/{name}"] = (data, 0o644)
    ko = f"{SHIM_DIR}/np_shim.ko"
    # 3. np_shim on hsr0: it loads (HSR has no poll controller) and changes nothing,
    # since netpoll checks IFF_DISABLE_NETPOLL first
    s.sh(f"insmod {ko} ifname=hsr0; labrc shim.hsr0 $?",
         f"echo 1 > {CONFIGFS}/hsr/enabled 2>/tmp/enable2.err; labrc hsr.enabled.shim $?",
         'lab "enable with np_shim stderr: $(cat /tmp/enable2.err)"',
         "rmmod np_shim; labrc shim.hsr0.rmmod $?")
    # 4. eth1 (e1000) has a poll controller: the command refuses, so does the module
    s.sh(*(f"insmod /lib/modules/{m}.ko" for m in s.kernel.insmod_chain("e1000")),
         "ip link set eth1 up")
    python_command(s, "shim.eth1", "python3 -m netconsole shim write /tmp/shim-eth1 "
                   "--device eth1")
    s.sh(f"insmod {ko} ifname=eth1; labrc shim.eth1.insmod $?")
    # 5. eth0 (virtio_net, no poll controller): loaded by the command, netconsole on
    # eth0 sends; unloaded; loaded again (the hook is gone again: ops restored)
    python_command(s, "shim.load", f"python3 -m netconsole shim write {SHIM_DIR} "
                   "--device eth0 --load --force")
    s.sh('lab "with np_shim: $(grep -c np_shim_poll_controller /proc/kallsyms) in kallsyms"')
    s.target("ok", port=p_ok, extended=True)
    s.kmsg_many(SHIM_RECORDS)
    s.settle()
    s.sh("rmmod np_shim; labrc shim.rmmod $?",
         'lab "after rmmod: $(grep -c np_shim_poll_controller /proc/kallsyms)"')
    s.kmsg_many(UNSHIM_RECORDS)
    s.settle()
    s.sh(f"insmod {ko} ifname=eth0; labrc shim.again $?")
    s.kmsg_many(RESHIM_RECORDS)
    s.settle()
    s.enable("ok", 0)
    s.sh("rmmod np_shim; labrc shim.rmmod2 $?")
    s.enable("ok", 1)
    s.kmsg(END_MARK)
    s.settle()


LABTRIG_DELAY_MS = 80
WARN_OOPS_MARK = "lab: labtrig warn_oops next"


def warn_oops(s: Script, ports: list[int], *, labtrig: bytes) -> None:
    """A module's WARN, then ~80 ms later a NULL-pointer write in the same insmod, with
    panic_on_oops=1: the boot ends in the Oops's panic. ports: 0 basic, 1 extended.

    The NIC is an e1000: QEMU sends its frames in the guest's register write, while
    virtio-net's wait for QEMU's main loop. On a loaded host that loop can stall past
    netpoll's 1-jiffy retry; netpoll then queues the rest for a worker that never runs
    after the panic, and the panic line never leaves the guest (seen in CI, one run in
    three: the wire stopped mid-Oops)."""
    s.extra_files["lab/labtrig.ko"] = (labtrig, 0o644)
    s.setup(nic="e1000")
    s.insmod_netconsole(";".join([nc_param(ports[0]), nc_param(ports[1], "+")]))
    s.sh("echo 1 > /proc/sys/kernel/panic_on_oops; labrc panic_on_oops $?")
    s.kmsg(WARN_OOPS_MARK)
    s.settle()
    s.lab(f"insmod labtrig.ko mode=warn_oops delay_ms={LABTRIG_DELAY_MS}")
    s.sh(f"insmod /lab/labtrig.ko mode=warn_oops delay_ms={LABTRIG_DELAY_MS}", "sleep 30")


SCENARIOS: dict[str, tuple[Steps, int]] = {
    "python": (python, 3),
    "listen": (listen, 3),
    "modparam": (modparam, 3),
    "configfs": (configfs, 3),
    "burst": (burst, 2),
    "netpoll": (netpoll, 3),  # np_shim steps only with shim= (conftest's netpoll_run)
}
