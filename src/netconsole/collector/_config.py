"""The receiver's configuration: one dataclass, a TOML file that mirrors the options.

Precedence: built-in defaults < the TOML file (`--config`) < command-line
options. `render_toml` prints the effective configuration in the same format
(`netconsole listen --print-config`), so it can be saved and edited.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netconsole.collector._sockets import DEFAULT_RCVBUF

DEFAULT_PORT = 6666  # the kernel's default target port (§2.1)


class ConfigError(ValueError):
    """A configuration value that cannot work, with what to write instead."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenConfig:
    """Everything `netconsole listen` can be told."""

    ports: tuple[int, ...] = (DEFAULT_PORT,)
    """UDP ports to receive on."""
    bind: tuple[str, ...] = ("::",)
    """Addresses to bind; `::` is dual stack (IPv4 and IPv6)."""
    allow: tuple[str, ...] = ()
    """CIDRs allowed to send; empty means everyone. Others are counted and dropped."""
    db: str | None = None
    """SQLite database; None means the user's data directory."""
    workers: int = 0
    """Receiver processes; 0 means one per core."""
    http: str | None = "127.0.0.1:6680"
    """Address:port of the HTTP endpoints (/metrics, /api/v1/…); None turns them off."""
    jsonl: str | None = None
    """Also write records as JSON lines to this file, or `-` for stdout."""
    quiet: bool = False
    """No live view of incoming records."""
    rcvbuf: int = DEFAULT_RCVBUF
    """Socket receive buffer to ask for, bytes."""
    retain: str | None = None
    """Delete records older than this (`30d`, `12h`)."""
    max_size: str | None = None
    """Keep the database under this size (`10GB`)."""
    batch_interval: float = 0.1
    """Longest a received record waits before it is written, seconds."""
    silent_after: float = 600.0
    """A host with no record for this long is shown as silent, seconds."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Tables of the file this layer does not own (alerts, …), passed on as they are."""

    def __post_init__(self) -> None:
        for p in self.ports:
            if not 1 <= p <= 65535:
                raise ConfigError(f"port {p} is not between 1 and 65535")
        for a in self.bind:
            try:
                ipaddress.ip_address(a)
            except ValueError:
                raise ConfigError(f"bind address {a!r} is not an IP address") from None
        for c in self.allow:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError:
                raise ConfigError(f"--allow {c!r} is not a CIDR such as 10.0.0.0/8") from None
        if self.http is not None:
            parse_hostport(self.http)
        if self.workers < 0:
            raise ConfigError("workers cannot be negative")

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def replace(self, **changes: Any) -> ListenConfig:
        return dataclasses.replace(self, **changes)


def parse_hostport(text: str) -> tuple[str, int]:
    """`127.0.0.1:6680`, `[::1]:6680` or `:6680` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"{text!r} is not address:port (e.g. 127.0.0.1:6680)")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


_KEYS = {f.name for f in dataclasses.fields(ListenConfig)} - {"extra"}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a configuration file; keys as in `ListenConfig` (dashes allowed)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    listen = data.pop("listen", data)
    out: dict[str, Any] = {}
    extra = {k: v for k, v in data.items() if isinstance(v, (dict, list)) and k != "listen"}
    for key, value in list(listen.items()):
        name = key.replace("-", "_")
        if isinstance(value, (dict, list)) and name not in _KEYS:
            continue
        if name not in _KEYS:
            raise ConfigError(f"{path}: unknown setting {key!r}; known: {', '.join(sorted(_KEYS))}")
        out[name] = tuple(value) if isinstance(value, list) else value
    if extra:
        out["extra"] = extra
    return out


def build_config(file_values: dict[str, Any], cli_values: dict[str, Any]) -> ListenConfig:
    """Defaults, then the file, then the options that were given on the command line."""
    merged = {**file_values, **{k: v for k, v in cli_values.items() if v not in (None, ())}}
    try:
        return ListenConfig(**merged)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def render_toml(cfg: ListenConfig) -> str:
    """The effective configuration as a TOML `[listen]` table."""
    lines = ["[listen]"]
    for f in dataclasses.fields(cfg):
        if f.name == "extra":
            continue
        value = getattr(cfg, f.name)
        if value is None:
            lines.append(f"# {f.name.replace('_', '-')} = (unset)")
            continue
        lines.append(f"{f.name.replace('_', '-')} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
