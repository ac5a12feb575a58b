"""Every netconsole/netpoll line of every kernel era, mapped to its cause.

The catalogue (kernel-netconsole.md §2.4, §3, §5.1, §6.1) is data: a list of
`Entry` with a regex over the message text, the errno the failure returns, and
the cause in plain words. `normalize` accepts the forms people paste: plain
`dmesg`, `dmesg -T`, `--time-format iso`, `journalctl -k`, raw `/dev/kmsg`
records, with or without `<N>` priorities, so a hand-written `dmesg.txt` works.

Prefixes differ by era (`netconsole: ` in 2.6, `netpoll: netconsole: ` in
3.x-6.15, `netconsole: netconsole: ` from ~6.16); patterns match the part after
the prefix, and the prefix is kept to tell the era.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

ENODEV, EBUSY, EINVAL, EDESTADDRREQ, ENOSPC, EPERM = 19, 16, 22, 89, 28, 1
ENOTSUPP = 524

ERRNO_NAMES = {
    EPERM: ("EPERM", "Operation not permitted"),
    ENODEV: ("ENODEV", "No such device"),
    EBUSY: ("EBUSY", "Device or resource busy"),
    EINVAL: ("EINVAL", "Invalid argument"),
    ENOSPC: ("ENOSPC", "No space left on device"),
    EDESTADDRREQ: ("EDESTADDRREQ", "Destination address required"),
    ENOTSUPP: ("ENOTSUPP", "Unknown error 524"),
}


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One kind of line."""

    code: str
    """Stable finding code (`dmesg-...`)."""
    pattern: re.Pattern[str]
    outcome: Outcome
    cause: str
    errno: int | None = None


def _e(code: str, pattern: str, outcome: Outcome, cause: str, errno: int | None = None) -> Entry:
    return Entry(code=code, pattern=re.compile(pattern), outcome=outcome, cause=cause,
                 errno=errno)


_P = r"(?P<prefix>(?:netpoll: |netconsole: )?(?:[\w.-]+: )?)"

CATALOGUE: tuple[Entry, ...] = (
    # banner (§2.4)
    _e("dmesg-banner", _P + r"local port (?P<local_port>\d+)$", Outcome.INFO,
       "netconsole parsed a target and printed its settings"),
    _e("dmesg-banner", _P + r"local (?:IPv4 address|IPv6 address|IP|IPv4|IPv6) "
       r"(?P<local_ip>[0-9a-fA-F:.]+)$", Outcome.INFO, "the source address of a target"),
    _e("dmesg-banner", _P + r"interface (?:name )?'(?P<dev>[^']*)'$", Outcome.INFO,
       "the interface of a target"),
    _e("dmesg-banner", _P + r"local ethernet address '(?P<dev_mac>[^']*)'$", Outcome.INFO,
       "the MAC selector of a target (ff:ff:ff:ff:ff:ff when chosen by name; not the "
       "NIC's own MAC)"),
    _e("dmesg-banner", _P + r"remote port (?P<remote_port>\d+)$", Outcome.INFO,
       "the destination port of a target"),
    _e("dmesg-banner", _P + r"remote (?:IPv4 address|IPv6 address|IP) "
       r"(?P<remote_ip>[0-9a-fA-F:.]+)$", Outcome.INFO, "the destination of a target"),
    _e("dmesg-banner", _P + r"remote ethernet address (?P<remote_mac>[0-9a-fA-F:]+)$",
       Outcome.INFO, "the destination MAC of a target"),
    # success
    _e("dmesg-console-enabled", r"^(?:printk: )?(?:legacy )?(?:boot)?console "
       r"\[(?P<console>netcon(?:_ext)?\d+)\] enabled", Outcome.SUCCESS,
       "the netconsole console is registered with printk"),
    _e("dmesg-logging-started", r"^netconsole: network logging started", Outcome.SUCCESS,
       "netconsole loaded (printed even with no targets) or a configfs target was enabled"),
    # parse failures (§2.2)
    _e("dmesg-parse-error", _P + r"couldn't parse config at '?(?P<rest>.*?)'?!$",
       Outcome.FAILURE, "the netconsole= string does not follow the grammar; init fails "
       "with -1 (EPERM, 'Operation not permitted')", EPERM),
    _e("dmesg-release-needs-extended", r"Release feature requires extended log message",
       Outcome.FAILURE, "'r' (release prefix) without extended ('+' or extended=1)", EINVAL),
    _e("dmesg-param-too-long", r"^(?:netconsole\.)?netconsole: string doesn't fit in "
       r"(?P<max>\d+) chars", Outcome.FAILURE,
       "the netconsole= module parameter is longer than 255 bytes", ENOSPC),
    _e("dmesg-whitespace", _P + r"warning: whitespace is not allowed", Outcome.WARNING,
       "the target port field starts with a space or tab"),
    # init failure
    _e("dmesg-cleaning-up", r"^netconsole: cleaning up", Outcome.FAILURE,
       "netconsole init failed: every boot target was dropped and the module did not load"),
    _e("dmesg-cmdline-not-enabled", r"^netconsole: Not enabling netconsole for "
       r"(?P<target>cmdline\d+)\. Netpoll setup failed", Outcome.FAILURE,
       "a boot target failed netpoll setup; it stays disabled in configfs (6.x DYNAMIC)"),
    # netpoll setup (§5.1)
    _e("dmesg-dev-missing", _P + r"(?:\S+: )?(?P<dev>\S+) doesn't exist, aborting\.?$",
       Outcome.FAILURE, "the interface does not exist in this network namespace when "
       "netconsole starts (wrong name, or its driver loads later)", ENODEV),
    _e("dmesg-slave", _P + r"(?P<dev>\S+) is a slave device, aborting", Outcome.FAILURE,
       "the interface is enslaved to a bond/bridge/team; netconsole must use the master",
       EBUSY),
    _e("dmesg-forcing-up", _P + r"device (?P<dev>\S+) not up yet, forcing it", Outcome.INFO,
       "the interface was down; netpoll brought it up"),
    _e("dmesg-open-failed", _P + r"failed to open (?P<dev>\S+)", Outcome.FAILURE,
       "netpoll could not bring the interface up (dev_open failed)"),
    _e("dmesg-carrier-timeout", _P + r"timeout waiting for carrier", Outcome.WARNING,
       "no link within netpoll.carrier_timeout (4 s); the first messages may be lost"),
    _e("dmesg-carrier-untrustworthy", _P + r"carrier detect appears untrustworthy, waiting 4 "
       r"seconds", Outcome.INFO, "a 4-second pause at setup (removed in 6.3)"),
    _e("dmesg-no-ip", _P + r"no IP address for (?P<dev>\S+), aborting", Outcome.FAILURE,
       "the interface has no IPv4 address and no source IP was given", EDESTADDRREQ),
    _e("dmesg-no-ipv6", _P + r"no IPv6 address for (?P<dev>\S+), aborting", Outcome.FAILURE,
       "the interface has no usable IPv6 address and no source IP was given", EDESTADDRREQ),
    _e("dmesg-ipv6-unsupported", _P + r"IPv6 is not supported (?P<dev>\S+), aborting",
       Outcome.FAILURE, "IPv6 is disabled on the interface", EINVAL),
    _e("dmesg-no-polling", _P + r"(?P<dev>\S+) doesn't support polling, aborting\.?$",
       Outcome.FAILURE, "netpoll cannot drive this device: before 4.19 the driver must "
       "provide ndo_poll_controller; from 4.19 the device sets IFF_DISABLE_NETPOLL. Returns "
       "-ENOTSUPP (524), shown by userspace as 'Unknown error 524'", ENOTSUPP),
    _e("dmesg-remote-ip-unset", _P + r"remote IP address not configured, aborting",
       Outcome.FAILURE, "the target has no remote IP", EDESTADDRREQ),
    _e("dmesg-families-differ", _P + r"local and remote IP address families differ, aborting",
       Outcome.FAILURE, "source and target IPs are IPv4 and IPv6", EINVAL),
    _e("dmesg-bad-ipv6", r"invalid IPv6 address at: <(?P<char>.*)>", Outcome.FAILURE,
       "a configfs IP write was not a valid IPv6 address", EINVAL),
    # runtime (§3.6)
    _e("dmesg-logging-stopped", r"^netconsole: network logging stopped on interface "
       r"(?P<dev>\S+) as it (?P<why>unregistered|released slaves|is joining a master device|"
       r"had an event)", Outcome.WARNING,
       "the interface went away or changed role; the target was disabled"),
    _e("dmesg-logging-resumed", r"^netconsole: network logging resumed on interface "
       r"(?P<dev>\S+)", Outcome.INFO, "the interface came back and the target resumed"),
    _e("dmesg-already", r"^netconsole: network logging has already (?P<state>started|stopped)",
       Outcome.INFO, "a configfs write of the current value to 'enabled' (fails with EINVAL)"),
    _e("dmesg-target-busy", r"^netconsole: target \((?P<target>.*)\) is enabled, disable to "
       r"update parameters", Outcome.INFO,
       "a configfs attribute was written while the target was enabled (EINVAL)"),
    # stacked devices and drivers (§5.3, §5.5)
    _e("dmesg-bond-slave-no-netpoll", r"(?:master_dev|bond_dev) is using netpoll, but new "
       r"slave device does not support netpoll", Outcome.WARNING,
       "a bond carrying netconsole refused a slave that cannot do netpoll (EBUSY)"),
    _e("dmesg-bridge-no-netpoll", r"new device (?P<dev>\S+) does not support netpoll "
       r"\(disabling\)", Outcome.WARNING,
       "an old bridge gave up netpoll because a port cannot do it"),
    _e("dmesg-irq-in-poll", r"enabled interrupts in poll", Outcome.WARNING,
       "a driver bug: the NIC driver re-enabled interrupts inside netpoll"),
    _e("dmesg-budget-in-poll", r"exceeded budget in poll", Outcome.WARNING,
       "a driver bug: a NAPI poll did receive work with budget 0"),
    # printk (§6)
    _e("dmesg-ignore-loglevel", r"debug: ignoring loglevel setting", Outcome.INFO,
       "ignore_loglevel is on: every message reaches the consoles"),
    _e("dmesg-console-suspend", r"Suspending console\(s\) \(use no_console_suspend to debug\)",
       Outcome.INFO, "consoles, netconsole included, are silent during suspend"),
    # userspace echoes people paste next to dmesg
    _e("user-unknown-error-524", r"Unknown error 524", Outcome.FAILURE,
       "userspace has no text for ENOTSUPP (524), a kernel-internal errno: netpoll refused "
       "the device ('doesn't support polling')", ENOTSUPP),
    _e("user-insert-failed", r"could not insert 'netconsole': (?P<error>.*)$", Outcome.FAILURE,
       "modprobe could not load netconsole"),
)

_TS = re.compile(
    r"^(?:<\d+>)?"
    r"(?:\[\s*\d+\.\d+\]\s?"  # [   12.345678]
    r"|\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\]\s?"  # dmesg -T
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[,.]\d+[+-]\d\d:?\d\d\s"  # --time-format iso
    r"|\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ kernel: (?:\[\s*\d+\.\d+\]\s?)?"  # journalctl -k
    r"|\d+,\d+,\d+,[^;]*;"  # /dev/kmsg record
    r")?"
)


def normalize(line: str) -> str:
    """The message text of a log line, without timestamp or priority decorations."""
    line = line.rstrip("\r\n")
    m = _TS.match(line)
    text = line[m.end():] if m else line
    if text.startswith("<") and ">" in text[:4]:
        text = text[text.index(">") + 1:]
    # journalctl -o short-monotonic: `[  812.338421] host kernel: text`
    text = re.sub(r"^[\w.-]+ kernel: ", "", text)
    return text.strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """A log line that the catalogue knows."""

    line: int
    """1-based line number in the file it came from."""
    text: str
    """The normalized message."""
    entry: Entry
    fields: dict[str, str]
    era: str | None = None
    """`netpoll`, `netconsole` or `2.6` from the prefix, when there is one."""

    @property
    def code(self) -> str:
        return self.entry.code


def _era(prefix: str | None) -> str | None:
    if not prefix:
        return None
    if prefix.startswith("netpoll: "):
        return "netpoll"
    if prefix.startswith("netconsole: netconsole: "):
        return "netconsole"
    if prefix == "netconsole: ":
        return "2.6"
    return None


def match_line(text: str, line: int = 0) -> Match | None:
    """Match one normalized message against the catalogue (first hit wins)."""
    if "netcon" not in text and "netpoll" not in text and "poll" not in text \
            and "loglevel" not in text and "console" not in text and "524" not in text:
        return None  # cheap pre-filter: a live dmesg has thousands of lines
    for entry in CATALOGUE:
        m = entry.pattern.search(text)
        if m is None:
            continue
        fields = {k: v for k, v in m.groupdict().items() if v is not None and k != "prefix"}
        prefix = m.groupdict().get("prefix")
        if entry.code == "dmesg-banner" and not prefix:
            continue  # "local port 123" without a netconsole prefix is someone else's
        return Match(line=line, text=text, entry=entry, fields=fields, era=_era(prefix))
    return None


def scan(lines: list[str]) -> list[Match]:
    """All catalogue lines in a log, in order."""
    out: list[Match] = []
    for i, raw in enumerate(lines, start=1):
        m = match_line(normalize(raw), i)
        if m is not None:
            out.append(m)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Banner:
    """A target as printed by the banner lines (§2.4)."""

    first_line: int
    lines: tuple[int, ...]
    local_port: int | None = None
    local_ip: str | None = None
    dev: str | None = None
    dev_mac: str | None = None
    remote_port: int | None = None
    remote_ip: str | None = None
    remote_mac: str | None = None
    era: str | None = None


def banners(matches: list[Match]) -> list[Banner]:
    """Group consecutive banner lines into targets; `local port` starts one."""
    out: list[Banner] = []
    cur: dict[str, str] = {}
    lines: list[int] = []
    era: str | None = None

    def flush() -> None:
        if lines and "remote_ip" in cur:
            out.append(Banner(
                first_line=lines[0], lines=tuple(lines),
                local_port=int(cur["local_port"]) if "local_port" in cur else None,
                local_ip=cur.get("local_ip"), dev=cur.get("dev"), dev_mac=cur.get("dev_mac"),
                remote_port=int(cur["remote_port"]) if "remote_port" in cur else None,
                remote_ip=cur.get("remote_ip"), remote_mac=cur.get("remote_mac"), era=era))

    for m in matches:
        if m.code != "dmesg-banner":
            continue
        if "local_port" in m.fields or (("dev" in m.fields or "remote_port" in m.fields)
                                        and m.fields.keys() & cur.keys()):
            flush()
            cur, lines = {}, []
        # netpoll_setup prints `local IP x` again after choosing the address;
        # keep the first (configured) value unless it was unset.
        for k, v in m.fields.items():
            if k not in cur or cur[k] in ("0.0.0.0", "::"):
                cur[k] = v
        lines.append(m.line)
        era = m.era or era
    flush()
    return out


def errno_text(errno: int) -> str:
    """`ENOTSUPP (524, "Unknown error 524")` style text."""
    name, text = ERRNO_NAMES.get(errno, (f"errno {errno}", f"error {errno}"))
    return f"{name} ({errno}, \"{text}\")"
