"""Reading netconsole traffic out of pcap/pcapng captures (`tcpdump -w`)."""

from netconsole.capture._files import FileProblem, Frame, read_frames
from netconsole.capture._packets import PacketError, PacketReject, UdpDatagram, udp_from_frame

__all__ = [
    "FileProblem",
    "Frame",
    "PacketError",
    "PacketReject",
    "UdpDatagram",
    "read_frames",
    "udp_from_frame",
]
