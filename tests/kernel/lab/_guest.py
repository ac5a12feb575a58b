"""The guest side: `/init` scripts for busybox `sh`, built step by step in Python.

Every scenario's `/init` sources `/lab/lib.sh` (below) and then runs its own
steps. Output of the script goes to the second serial port (`lab.log`), the
kernel console stays alone on the first. `LAB:` lines announce each step;
`LABRC: <name> <rc>` lines carry exit codes the tests read back.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lab._kernel import Kernel

GUEST_IP = "10.0.2.15"
HOST_IP = "10.0.2.2"  # QEMU user networking: delivered to 127.0.0.1 on the host
GATEWAY_MAC = "52:55:0a:00:02:02"
CONFIGFS = "/sys/kernel/config/netconsole"

LIB_SH = r"""# lab library for busybox sh (sourced by /init)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/null >/dev/ttyS1 2>&1
lab() { echo "LAB: $*"; }
labrc() { echo "LABRC: $1 $2"; }
# kmsg FORMAT: one printf, one write(), one record (printf understands \NNN escapes)
kmsg() { printf "$1" > /dev/kmsg; }
load() {  # load modules in order, report each rc
    for m in "$@"; do
        insmod "/lib/modules/$m.ko"; rc=$?
        [ $rc = 0 ] || lab "insmod $m rc=$rc"
    done
}
carrier() {
    i=0
    while [ "$(cat /sys/class/net/$1/carrier 2>/dev/null)" != 1 ] && [ $i -lt 100 ]; do
        sleep 0.05; i=$((i + 1))
    done
    lab "$1: $(cat /sys/class/net/$1/address) carrier=$(cat /sys/class/net/$1/carrier)"
}
netstats() {
    s=/sys/class/net/$1/statistics
    lab "$1 stats: tx_packets=$(cat $s/tx_packets) tx_dropped=$(cat $s/tx_dropped)"
}
cfs_set() {  # cfs_set TARGET ATTR VALUE
    echo "$3" > "/sys/kernel/config/netconsole/$1/$2"; rc=$?
    [ $rc = 0 ] || lab "$1/$2 <- $3 rc=$rc"
    return $rc
}
settle() {  # wait until eth0 stops sending (7.x netconsole is a thread, often behind)
    last=-1; n=0
    while [ $n -lt 120 ]; do
        now=$(cat /sys/class/net/eth0/statistics/tx_packets)
        [ "$now" = "$last" ] && break
        last=$now; n=$((n + 1)); sleep 0.5
    done
    lab "tx settled after $n polls at $last packets"
}
finish() {
    netstats eth0
    lab "scenario $SCENARIO done, powering off"
    sync
    poweroff -f
    sleep 5
}
"""


def printf_format(text: bytes) -> str:
    """`text` as a printf format in single quotes: every byte survives the shell."""
    out = []
    for b in text:
        c = chr(b)
        if c == "%":
            out.append("%%")
        elif c == "\\":
            out.append("\\\\")
        elif c == "'" or b < 0x20 or b >= 0x7F:
            out.append(f"\\{b:03o}")
        else:
            out.append(c)
    return "'" + "".join(out) + "'"


@dataclass(slots=True)
class Script:
    """One scenario's `/init`, as shell lines."""

    scenario: str
    kernel: Kernel
    lines: list[str] = field(default_factory=list)
    extra_files: dict[str, tuple[bytes, int]] = field(default_factory=dict)

    def sh(self, *lines: str) -> Script:
        self.lines.extend(lines)
        return self

    def lab(self, message: str) -> Script:
        return self.sh(f"lab {shlex.quote(message)}")

    def setup(self, *, nic: str = "virtio_net", address: bool = True) -> Script:
        """Load the NIC driver chain and configfs; bring eth0 up (with its address)."""
        chain = self.kernel.insmod_chain(nic)
        self.sh(f"load {' '.join(chain)}" if chain else ": built-in NIC driver")
        deps = [m for m in self.kernel.insmod_chain("netconsole") if m != "netconsole"]
        if deps:
            self.sh(f"load {' '.join(deps)}")
        # No IPv6: the NIC then sends nothing but netconsole's datagrams, so its
        # tx_packets counts exactly what the host should receive.
        self.sh("mount -t configfs configfs /sys/kernel/config",
                "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
                "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6",
                "ip link set lo up", "ip link set eth0 up", "carrier eth0")
        if address:
            self.address()
        return self

    def load_modules(self, *names: str) -> Script:
        """Load modules of the kernel (lab._kernel.EXTRA_MODULES) with their dependencies."""
        chain = self.kernel.insmod_chain(*names)
        return self.sh(f"load {' '.join(chain)}") if chain else self

    def address(self, dev: str = "eth0") -> Script:
        return self.sh(f"ip addr add {GUEST_IP}/24 dev {dev}",
                       f"ip route add default via {HOST_IP} dev {dev}")

    def insmod_netconsole(self, param: str | None, rc_name: str = "insmod") -> Script:
        if param is None:
            self.lab("insmod netconsole.ko (no parameter)")
            self.sh("insmod /lib/modules/netconsole.ko")
        else:
            self.lab(f"insmod netconsole.ko netconsole={param}")
            self.sh(f"insmod /lib/modules/netconsole.ko netconsole={shlex.quote(param)}")
        return self.sh(f"labrc {rc_name} $?")

    def target(self, name: str, *, port: int, extended: bool = False, release: bool = False,
               dev: str = "eth0", remote_ip: str = HOST_IP,
               remote_mac: str | None = GATEWAY_MAC,
               userdata: Mapping[str, str] | None = None, sysdata: Iterable[str] = (),
               enable: bool = True) -> Script:
        """A configfs target; `sysdata` names toggles (`cpu_nr`, `taskname`, ...);
        `remote_mac=None` leaves the kernel's default (broadcast)."""
        d = f"{CONFIGFS}/{name}"
        self.sh(f"mkdir {d}", f"cfs_set {name} dev_name {dev}",
                f"cfs_set {name} remote_ip {remote_ip}", f"cfs_set {name} remote_port {port}")
        if remote_mac is not None:
            self.sh(f"cfs_set {name} remote_mac {remote_mac}")
        if extended:
            self.sh(f"cfs_set {name} extended 1")
        if release:
            self.sh(f"cfs_set {name} release 1")
        for key, value in (userdata or {}).items():
            self.userdata(name, key, value)
        for toggle in sysdata:
            self.sh(f"cfs_set {name} userdata/{toggle}_enabled 1")
        if enable:
            self.enable(name)
        return self

    def enable(self, name: str, value: int = 1) -> Script:
        return self.sh(f"echo {value} > {CONFIGFS}/{name}/enabled",
                       f"labrc {name}.enabled={value} $?")

    def userdata(self, name: str, key: str, value: str | None) -> Script:
        d = f"{CONFIGFS}/{name}/userdata/{key}"
        if value is None:
            return self.sh(f"rmdir {d}", f"labrc {name}.userdata.{key}.rmdir $?")
        return self.sh(f"[ -d {d} ] || mkdir {d}", f"echo {shlex.quote(value)} > {d}/value",
                       f"labrc {name}.userdata.{key} $?")

    def kmsg(self, text: bytes | str, prefix: str = "<6>") -> Script:
        """Write one record through /dev/kmsg (one write(); text without its newline)."""
        data = text.encode() if isinstance(text, str) else text
        fmt = printf_format(prefix.encode() + data + b"\n")
        return self.sh(f"kmsg {fmt}")

    def kmsg_many(self, texts: Sequence[bytes | str], prefix: str = "<6>") -> Script:
        for text in texts:
            self.kmsg(text, prefix)
        return self

    def crash(self) -> Script:
        """A panic through sysrq: the boot ends here (panic=1, -no-reboot)."""
        return self.sh("lab 'sysrq c: crashing'", "echo 1 > /proc/sys/kernel/sysrq",
                       "echo c > /proc/sysrq-trigger", "sleep 30")

    def settle(self) -> Script:
        """Wait until eth0 stops sending: 7.x prints netconsole from a thread that
        lags behind; disabling a target or powering off drops what it has not sent."""
        return self.sh("settle")

    def render(self) -> bytes:
        head = [
            "#!/bin/sh",
            f"SCENARIO={shlex.quote(self.scenario)}",
            ". /lab/lib.sh",
            "lab \"init start, scenario=$SCENARIO, kernel=$(uname -r)\"",
        ]
        return ("\n".join([*head, *self.lines, "finish", ""])).encode()

    def files(self) -> dict[str, tuple[bytes, int]]:
        return {"init": (self.render(), 0o755), "lab/lib.sh": (LIB_SH.encode(), 0o644),
                **self.extra_files}


def lab_rcs(lab_log: str) -> dict[str, int]:
    """`LABRC: name rc` lines of a run, by name (the last one wins)."""
    out: dict[str, int] = {}
    for line in lab_log.splitlines():
        if line.startswith("LABRC: "):
            parts = line.split()
            if len(parts) == 3 and parts[2].lstrip("-").isdigit():
                out[parts[1]] = int(parts[2])
    return out
