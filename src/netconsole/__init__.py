"""netconsole: Linux netconsole end to end.

The wire codec (`netconsole.wire`), the per-sender stream machine
(`netconsole.stream`) and the capture reader (`netconsole.capture`) are sans-IO;
everything that touches sockets, files or the clock lives at the edges.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("netconsole")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
