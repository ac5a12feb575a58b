"""Where committed records go besides the store: syslog servers and per-host files.

`open_outputs` makes them from the receiver's configuration; the worker hands
each one every committed batch (`committed_batch`) and reads their counters
into /metrics. See docs/outputs.md.
"""

from __future__ import annotations

from netconsole.outputs._base import (
    CommittedBatch,
    Delivered,
    Entry,
    Output,
    OutputStats,
    committed_batch,
    host_of,
)
from netconsole.outputs.files import FilesOutput, safe_name
from netconsole.outputs.syslog import (
    SD_ID,
    SyslogOutput,
    SyslogTarget,
    TargetError,
    format_message,
    octet_frame,
    parse_target,
)


def open_outputs(forward: tuple[str, ...], files: str | None) -> list[Output]:
    """The outputs of a configuration, started (their values were checked before).

    Raises:
        OSError: the files directory cannot be made.
    """
    outputs: list[Output] = []
    if files is not None:
        outputs.append(FilesOutput(files))
    for url in dict.fromkeys(forward):  # the same target twice would send everything twice
        outputs.append(SyslogOutput(parse_target(url)))
    return outputs


__all__ = [
    "SD_ID",
    "CommittedBatch",
    "Delivered",
    "Entry",
    "FilesOutput",
    "Output",
    "OutputStats",
    "SyslogOutput",
    "SyslogTarget",
    "TargetError",
    "committed_batch",
    "format_message",
    "host_of",
    "octet_frame",
    "open_outputs",
    "parse_target",
    "safe_name",
]
