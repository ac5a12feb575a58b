"""Making a target survive reboots, the way the system expects (§2.1, §2.3).

* configfs kernels: a systemd unit that runs `netconsole setup` again at boot,
  after the network is online, so the next hop's MAC is resolved afresh (a
  replaced router or a DHCP change must not silently break netconsole).
* no configfs: `modprobe.d` options plus `modules-load.d`, so the module loads at
  boot with `netconsole=`; the same unit re-resolves the MAC and rewrites them.
* `--boot-param`: the kernel command-line word for early-boot capture:
  `netconsole.netconsole=` for a module, `netconsole=` when built in (a module
  ignores the bare form), written as a GRUB drop-in when asked to persist.

The file contents are pure functions; `install` writes them through
`HostWriter`. Several named targets share one modprobe.d file: each keeps a
`# netconsole-setup target NAME VALUE` line so a later run can rebuild the
`options` line without losing the others. The GRUB drop-in names its target
the same way, so `uninstall` deletes only its own. `uninstall` deletes only
files these functions wrote (the `_WRITTEN_BY` header): `netconsole-listen`
is also the name of the receiver's own unit.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from netconsole.host.view import HostView
from netconsole.host.write import HostWriter

UNIT_DIR = "etc/systemd/system"
MODPROBE_FILE = "etc/modprobe.d/netconsole.conf"
MODULES_LOAD_FILE = "etc/modules-load.d/netconsole.conf"
GRUB_FILE = "etc/default/grub.d/netconsole.cfg"
_REGISTRY = re.compile(r"^# netconsole-setup target (\S+) (\S+)\s*$")
_GRUB_OWNER = re.compile(r"^# netconsole-setup target (\S+)\s*$", re.M)
_WRITTEN_BY = "# Written by `netconsole setup --persist`"


def unit_name(name: str) -> str:
    return f"netconsole-{name}.service"


def systemd_unit(name: str, receiver: str, argv: Sequence[str]) -> str:
    """A oneshot unit re-running `argv` (a `netconsole setup ...` command line) at boot."""
    cmd = " ".join(shlex.quote(a) for a in argv)
    return (
        f"{_WRITTEN_BY}: netconsole target {name} -> {receiver}.\n"
        "# At boot it resolves the next hop's MAC again and re-applies the target.\n"
        "[Unit]\n"
        f"Description=netconsole target {name} towards {receiver}\n"
        "Documentation=man:netconsole-setup(1) man:netconsole(1)\n"
        "Wants=network-online.target\n"
        "After=network-online.target sys-kernel-config.mount\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart={cmd}\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n")


def written_units(view: HostView) -> list[str]:
    """The units `install` wrote: the targets persisted on this host."""
    return [n for n in view.listdir(UNIT_DIR) or ()
            if n.startswith("netconsole-") and n.endswith(".service")
            and (view.read(f"{UNIT_DIR}/{n}") or "").startswith(_WRITTEN_BY)]


def parse_registry(text: str | None) -> dict[str, str]:
    """The named targets recorded in our modprobe.d file, in file order."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        m = _REGISTRY.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def modprobe_conf(targets: dict[str, str]) -> str:
    """modprobe.d text loading every recorded target (joined with `;`)."""
    lines = ["# Written by `netconsole setup --persist`. One line per named target;",
             "# the options line joins them (the whole value must stay under 256 bytes)."]
    lines += [f"# netconsole-setup target {n} {v}" for n, v in targets.items()]
    lines.append(f"options netconsole netconsole={';'.join(targets.values())}")
    return "\n".join(lines) + "\n"


def modules_load_conf() -> str:
    return "# Written by `netconsole setup --persist`: load netconsole at boot.\nnetconsole\n"


def grub_snippet(boot_param: str, name: str | None = None) -> str:
    owner = f"# netconsole-setup target {name}\n" if name else ""
    return ("# Written by `netconsole setup --boot-param --persist`; run update-grub.\n"
            f'{owner}GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {boot_param}"\n')


def grub_owner(text: str) -> str | None:
    """The target a GRUB drop-in was written for (None: no owner line)."""
    m = _GRUB_OWNER.search(text)
    return m.group(1) if m else None


def boot_param_note(builtin: bool | None) -> str:
    if builtin:
        return ("netconsole is built in: `netconsole=` on the kernel command line starts it "
                "at late_initcall; a NIC driver loaded later from the initramfs makes it "
                "fail with \"... doesn't exist, aborting\".")
    return ("netconsole is a module: the kernel ignores a bare `netconsole=`; "
            "`netconsole.netconsole=` is read by modprobe when the module loads, so "
            "capture starts only then (modules-load.d loads it early).")


@dataclass(frozen=True, slots=True, kw_only=True)
class Persisted:
    files: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    """Commands run (or, on a test root, that would have run)."""
    notes: tuple[str, ...] = ()


def install(writer: HostWriter, *, name: str, receiver: str, argv: Sequence[str],
            module_value: dict[str, str] | None = None, grub: str | None = None) -> Persisted:
    """Write the unit (and modprobe.d/modules-load.d, and the GRUB drop-in), enable it.

    Args:
        module_value: name -> target for the modprobe.d registry (module method only).
        grub: the boot parameter to put in the GRUB drop-in.
    """
    files: list[str] = []
    commands: list[str] = []
    notes: list[str] = []
    unit = f"{UNIT_DIR}/{unit_name(name)}"
    writer.write_file(unit, systemd_unit(name, receiver, argv))
    files.append("/" + unit)
    if module_value is not None:
        writer.write_file(MODPROBE_FILE, modprobe_conf(module_value))
        writer.write_file(MODULES_LOAD_FILE, modules_load_conf())
        files += ["/" + MODPROBE_FILE, "/" + MODULES_LOAD_FILE]
    if grub is not None:
        writer.write_file(GRUB_FILE, grub_snippet(grub, name))
        files.append("/" + GRUB_FILE)
        notes.append("run `update-grub` (or grub2-mkconfig) for the boot parameter to apply")
    for argv_ in (["systemctl", "daemon-reload"], ["systemctl", "enable", unit_name(name)]):
        try:
            res = writer.run(argv_)
        except OSError as exc:
            notes.append(f"{argv_[0]} is not available ({exc.strerror}): enable "
                         f"{unit_name(name)} by hand")
            break
        commands.append(" ".join(argv_) + ("" if res is None or res.returncode == 0
                                           else f" (failed: {res.stderr.strip()})"))
    return Persisted(files=tuple(files), commands=tuple(commands), notes=tuple(notes))


def _systemctl(writer: HostWriter, *args: str) -> list[str]:
    """Run systemctl; the command as reported (none when there is no systemctl)."""
    argv = ["systemctl", *args]
    try:
        res = writer.run(argv)
    except OSError:
        return []
    return [" ".join(argv) + ("" if res is None or res.returncode == 0 else " (failed)")]


def uninstall(writer: HostWriter, name: str) -> Persisted:
    """Undo `install` for a target: disable and delete its unit, drop it from the
    modprobe.d registry, delete its GRUB drop-in (and say to run update-grub)."""
    files: list[str] = []
    commands: list[str] = []
    notes: list[str] = []
    unit = f"{UNIT_DIR}/{unit_name(name)}"
    path = writer.path(unit)
    if path.exists() and not path.read_text(errors="replace").startswith(_WRITTEN_BY):
        notes.append(f"/{unit} was not written by `netconsole setup`: left as it is")
    elif path.exists():
        commands += _systemctl(writer, "disable", unit_name(name))
        writer.remove_file(unit)
        files.append("/" + unit)
        commands += _systemctl(writer, "daemon-reload")  # else systemd still knows the unit
    path = writer.path(MODPROBE_FILE)
    if path.exists():
        reg = parse_registry(path.read_text())
        if name in reg:
            del reg[name]
            if reg:
                writer.write_file(MODPROBE_FILE, modprobe_conf(reg))
            else:
                writer.remove_file(MODPROBE_FILE)
                if writer.remove_file(MODULES_LOAD_FILE):
                    files.append("/" + MODULES_LOAD_FILE)
            files.append("/" + MODPROBE_FILE)
    grub = writer.path(GRUB_FILE)
    # No owner line: written before drop-ins named their target; one drop-in per host.
    if grub.exists() and grub_owner(grub.read_text(errors="replace")) in (name, None):
        writer.remove_file(GRUB_FILE)
        files.append("/" + GRUB_FILE)
        notes.append("run `update-grub` so the next boot no longer starts this target")
    return Persisted(files=tuple(files), commands=tuple(commands), notes=tuple(notes))
