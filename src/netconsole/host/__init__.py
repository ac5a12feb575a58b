"""Reading a host, live or from a snapshot, and writing snapshots (`--collect`)."""

from netconsole.host.netinfo import Address, Link, Neighbour, Route, RouteLookup
from netconsole.host.view import HostView, NetViews, SnapshotError, open_root

__all__ = [
    "Address",
    "HostView",
    "Link",
    "Neighbour",
    "NetViews",
    "Route",
    "RouteLookup",
    "SnapshotError",
    "open_root",
]
