"""forward's output for a /dev/kmsg record == the kernel's datagrams for it.

For every complete extended record of the real kernel captures: write the
record as /dev/kmsg would show it, parse it with forward's kmsg parser, give it
the target settings the kernel had (release prefix, userdata, sysdata values),
encode it the way forward does, and compare with the captured payloads.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from netconsole.forward.kmsg import parse_kmsg
from netconsole.forward.sender import EncodeConfig, encode, outgoing
from netconsole.stream import Record
from netconsole.wire import SYSDATA_ORDER, Mode, OutgoingRecord, format_message
from tests.helpers import SCENARIOS, capture, decode_capture, records, udp_payloads


def _kernel_datagrams(kernel: str, scenario: str) -> dict[tuple[int, int], list[bytes]]:
    sent: dict[tuple[int, int], list[bytes]] = defaultdict(list)
    for _, _, _, dport, payload in udp_payloads(capture(kernel, scenario)):
        if payload[:1].isdigit():
            head = payload.split(b";", 1)[0].split(b",")
            seq = int(head[2] if not head[0].isdigit() else head[1])
            sent[(dport, seq)].append(payload)
    return sent


def _split(r: Record) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]],
                                dict[bytes, bytes]]:
    """(dictionary, userdata, sysdata) of a record's flat field list (§4.6)."""
    fields = list(r.fields)
    dictionary = []
    while fields and fields[0][0] in (b"SUBSYSTEM", b"DEVICE"):
        dictionary.append(fields.pop(0))
    sysdata: dict[bytes, bytes] = {}
    allowed = list(SYSDATA_ORDER)
    while fields and fields[-1][0] in allowed:
        key, value = fields.pop()
        sysdata[key] = value
        allowed = allowed[: allowed.index(key)]
    return dictionary, fields, sysdata


def _kmsg_line(r: Record, dictionary: list[tuple[bytes, bytes]]) -> bytes:
    assert r.facility is not None and r.level is not None
    assert r.seq is not None and r.ts_usec is not None
    return format_message(OutgoingRecord(
        facility=r.facility, level=r.level, seq=r.seq, ts_usec=r.ts_usec, text=r.text,
        flag=r.flag, caller=r.caller, dictionary=tuple(dictionary)))


# `basic` has only basic-mode traffic: nothing forward would send.
EXTENDED_SCENARIOS = [(k, s) for k, s in SCENARIOS if s != "basic"]


@pytest.mark.parametrize(("kernel", "scenario"), EXTENDED_SCENARIOS)
def test_forward_encodes_kmsg_records_like_the_kernel(kernel: str, scenario: str) -> None:
    sent = _kernel_datagrams(kernel, scenario)
    checked = 0
    for r in records(decode_capture(capture(kernel, scenario))):
        if r.mode is not Mode.EXTENDED or not r.complete:
            continue
        assert r.seq is not None
        dictionary, userdata, sysdata = _split(r)
        kmsg = parse_kmsg(_kmsg_line(r, dictionary))
        config = EncodeConfig(
            release=r.release, labels=tuple(userdata),
            sysdata=frozenset(k.decode() for k in sysdata),
            kernel_release=sysdata.get(b"release", b"").decode())
        cpu = sysdata.get(b"cpu")
        out = encode(outgoing(
            kmsg, config, msgid=int(sysdata[b"msgid"]) if b"msgid" in sysdata else None,
            taskname=sysdata.get(b"taskname"), cpu=int(cpu) if cpu is not None else None))
        assert out == sent[(r.sender.local_port, r.seq)], f"seq {r.seq}"
        checked += 1
    assert checked > 5


def test_equivalence_covers_fragments_userdata_and_sysdata() -> None:
    # The test above must have met every feature somewhere, or it proves little.
    seen = {"fragmented": 0, "userdata": 0, "sysdata": 0, "release": 0, "dictionary": 0}
    for kernel, scenario in EXTENDED_SCENARIOS:
        sent = _kernel_datagrams(kernel, scenario)
        for r in records(decode_capture(capture(kernel, scenario))):
            if r.mode is not Mode.EXTENDED or not r.complete or r.seq is None:
                continue
            dictionary, userdata, sysdata = _split(r)
            seen["fragmented"] += len(sent[(r.sender.local_port, r.seq)]) > 1
            seen["userdata"] += bool(userdata)
            seen["sysdata"] += bool(sysdata)
            seen["release"] += r.release is not None
            seen["dictionary"] += bool(dictionary)
    assert all(seen.values()), seen
