"""The receiver's I/O edge: sockets, worker processes, batching into the store, metrics."""

from netconsole.collector._config import (
    DEFAULT_PORT,
    ConfigError,
    ListenConfig,
    build_config,
    load_toml,
    render_toml,
)
from netconsole.collector._errors import ListenError
from netconsole.collector._supervisor import check_ports, free_udp_port, serve
from netconsole.collector._worker import Worker

__all__ = [
    "DEFAULT_PORT",
    "ConfigError",
    "ListenConfig",
    "ListenError",
    "Worker",
    "build_config",
    "check_ports",
    "free_udp_port",
    "load_toml",
    "render_toml",
    "serve",
]
