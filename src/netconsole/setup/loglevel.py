"""The console loglevel: what printk will keep from netconsole (§6). Pure.

printk hands a record to consoles only when `level < console_loglevel` (or
`ignore_loglevel` is set), for every console, netconsole included, extended
or not. `/proc/sys/kernel/printk` holds four numbers: console_loglevel,
default_message_loglevel, minimum_console_loglevel, default_console_loglevel.
Writing one number there changes only the first; `sysctl.d` makes it stick.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
PRINTK = "proc/sys/kernel/printk"
SYSCTL_FILE = "etc/sysctl.d/90-netconsole-loglevel.conf"


@dataclass(frozen=True, slots=True, kw_only=True)
class Loglevel:
    console: int
    default_message: int = 4
    minimum: int = 1
    default_console: int = 7
    ignore_loglevel: bool = False

    def passes(self, level: int) -> bool:
        return self.ignore_loglevel or level < self.console

    @property
    def filtered(self) -> tuple[str, ...]:
        """`N name` of every level netconsole will not get."""
        return tuple(f"{i} {LEVELS[i]}" for i in range(8) if not self.passes(i))

    def describe(self) -> str:
        if self.ignore_loglevel:
            return "ignore_loglevel is on: every message reaches netconsole"
        if not self.filtered:
            return f"console_loglevel {self.console}: every level reaches netconsole"
        passing = [f"{i} {LEVELS[i]}" for i in range(8) if self.passes(i)]
        return (f"console_loglevel {self.console}: netconsole gets "
                f"{', '.join(passing) or 'nothing'}; filtered: {', '.join(self.filtered)} "
                "(oops and panic raise it to 15 while they print)")

    def with_console(self, level: int) -> Loglevel:
        return Loglevel(console=level, default_message=self.default_message,
                        minimum=self.minimum, default_console=self.default_console,
                        ignore_loglevel=self.ignore_loglevel)


def parse_printk(text: str | None, ignore: str | None = None) -> Loglevel | None:
    """Parse `/proc/sys/kernel/printk` (`4\\t4\\t1\\t7`) and ignore_loglevel (`Y`/`N`)."""
    if not text:
        return None
    try:
        nums = [int(x) for x in text.split()]
    except ValueError:
        return None
    if not nums:
        return None
    nums += [4, 1, 7][len(nums) - 1:]
    return Loglevel(console=nums[0], default_message=nums[1], minimum=nums[2],
                    default_console=nums[3],
                    ignore_loglevel=(ignore or "").strip() in ("Y", "1"))


def check_level(level: int) -> int:
    """`--loglevel` accepts 1-8 like `dmesg -n` (8: everything, debug included).

    Raises:
        ValueError: outside 1-8.
    """
    if not 1 <= level <= 8:
        raise ValueError("the console loglevel is 1-8 (8 lets every level through)")
    return level


def sysctl_conf(ll: Loglevel) -> str:
    """The sysctl.d file that restores this loglevel at boot."""
    return ("# Written by `netconsole setup --loglevel`: console messages below this level\n"
            "# reach netconsole (kernel.printk = console default minimum boot-default).\n"
            f"kernel.printk = {ll.console} {ll.default_message} {ll.minimum} "
            f"{ll.default_console}\n")


def verification_level(ll: Loglevel | None) -> int | None:
    """A level for the verification message that passes the filter: notice (5) when
    it can, else the highest that passes; None when only emerg would (which every
    terminal shows)."""
    if ll is None:
        return 5
    for level in (5, 4, 3, 2):
        if ll.passes(level):
            return level
    return None
