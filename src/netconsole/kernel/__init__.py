"""What the kernel does, as data and pure functions (no I/O): the netconsole=
grammar (netconsole_param), the kernel command line (cmdline), modprobe.d
(modprobe), how the kernel reads addresses (addresses), the configfs model, the
netpoll support model and driver history, the catalogue of netconsole/netpoll
dmesg lines, and kernel release parsing."""

from netconsole.kernel.netconsole_param import (
    ParsedParam,
    ParsedTarget,
    ParseError,
    TargetParams,
    format_param,
    format_target,
    parse_param,
    parse_target,
)
from netconsole.kernel.version import KernelVersion, parse_release

__all__ = [
    "KernelVersion",
    "ParseError",
    "ParsedParam",
    "ParsedTarget",
    "TargetParams",
    "format_param",
    "format_target",
    "parse_param",
    "parse_release",
    "parse_target",
]
