"""Benchmark: decode + stream throughput on one core.

Builds a synthetic capture of N datagrams (default 1,000,000) of extended
netconsole traffic from 1,000 senders, byte-exact to the kernel's encoder, with
a share of fragmented records, then measures:

* stream: payload -> SenderStream -> events, the receiver's per-datagram work;
* capture: the whole `netconsole decode` path, pcap parsing included.

Usage: python bench/decode.py [--datagrams N] [--senders S] [--fragmented 0.05]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import struct
import time

from netconsole.capture import read_frames
from netconsole.capture._decode import CaptureDecoder
from netconsole.stream import Record, Sender, SenderStream
from netconsole.wire import OutgoingRecord, encode_extended


def make_traffic(n: int, senders: int, fragmented: float, seed: int = 1) -> list[tuple[int, bytes]]:
    rnd = random.Random(seed)
    seqs = [0] * senders
    out: list[tuple[int, bytes]] = []
    while len(out) < n:
        s = rnd.randrange(senders)
        seqs[s] += 1
        long = rnd.random() < fragmented
        text = (b"kernel: something long happened " * 60) if long else (
            b"eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx %d" % seqs[s])
        for d in encode_extended(OutgoingRecord(
                facility=0, level=6, seq=seqs[s], ts_usec=1_000_000 + seqs[s] * 1000,
                text=text, userdata=((b"hostname", b"host-%d" % s),))):
            out.append((s, d))
    return out[:n]


def pcap_of(traffic: list[tuple[int, bytes]]) -> bytes:
    parts = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)]
    for i, (s, payload) in enumerate(traffic):
        udp = struct.pack("!HHHH", 6665, 6666, len(payload) + 8, 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([10, 0, s >> 8, s & 255]), bytes([10, 1, 0, 1]))
        frame = ip + udp
        parts.append(struct.pack("<IIII", 1_700_000_000 + i // 100_000, (i % 100_000) * 10,
                                 len(frame), len(frame)) + frame)
    return b"".join(parts)


def bench_stream(traffic: list[tuple[int, bytes]], senders: int) -> tuple[float, int]:
    streams = [SenderStream(Sender(host=f"10.0.{s >> 8}.{s & 255}", port=6665, local_port=6666))
               for s in range(senders)]
    records = 0
    t0 = time.process_time()
    now = 0.0
    for s, payload in traffic:
        st = streams[s]
        st.feed(payload, now)
        for e in st.events():
            if type(e) is Record:
                records += 1
        now += 1e-6
    return time.process_time() - t0, records


def bench_capture(data: bytes) -> tuple[float, int]:
    t0 = time.process_time()
    dec = CaptureDecoder()
    records = sum(1 for e in dec.frames(read_frames(io.BytesIO(data))) if type(e) is Record)
    records += sum(1 for e in dec.finish() if type(e) is Record)
    return time.process_time() - t0, records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datagrams", type=int, default=1_000_000)
    ap.add_argument("--senders", type=int, default=1000)
    ap.add_argument("--fragmented", type=float, default=0.05,
                    help="share of records long enough to be fragmented")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # one core, as the figure claims
    traffic = make_traffic(args.datagrams, args.senders, args.fragmented)
    data = pcap_of(traffic)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; pinned to one core")
    print(f"input: {len(traffic):,} datagrams from {args.senders:,} senders, "
          f"{args.fragmented:.0%} of records fragmented, {len(data) / 2**20:.1f} MiB pcap")
    cpu, recs = bench_stream(traffic, args.senders)
    print(f"stream  (payload -> records): {recs:,} records in {cpu:.2f} CPU s = "
          f"{recs / cpu:,.0f} records/s, {len(traffic) / cpu:,.0f} datagrams/s")
    cpu, recs = bench_capture(data)
    print(f"capture (pcap -> records):    {recs:,} records in {cpu:.2f} CPU s = "
          f"{recs / cpu:,.0f} records/s, {len(traffic) / cpu:,.0f} datagrams/s")


if __name__ == "__main__":
    main()
