"""The receiver's configuration: one dataclass, a TOML file that mirrors the options.

Precedence: built-in defaults < the TOML file (`--config`) < command-line
options. `render_toml` prints the effective configuration in the same format
(`netconsole listen --print-config`), the other tables (`[[alerts]]`) included,
so it can be saved and edited.

`ListenConfig` checks every value's type and range whatever its source (the
file gives str, int, float, bool and lists; the options give str and int): a
mistake is one `ConfigError` naming the setting before anything is started or
created, and a bad edit before a SIGHUP keeps the running configuration.
Durations (`batch-interval`, `silent-after`) take seconds or a string with a
unit as `retain` does (`"10m"`), and are kept as float seconds. TOML has no
null: `http = false` turns the endpoints off.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netconsole import _hostport
from netconsole.alerts import RuleError, parse_rules
from netconsole.collector._sockets import DEFAULT_RCVBUF
from netconsole.outputs import TargetError, parse_target
from netconsole.store import StoreError, default_db_path, parse_duration, parse_size

DEFAULT_PORT = 6666  # the kernel's default target port (§2.1)
MAX_WORKERS = 256  # as `--workers`
MAX_RCVBUF = 2**31 - 1  # SO_RCVBUF is a C int
# Records wait this long at most before they are stored and shown; past a
# minute "live" means nothing and a crash loses more than it should.
MAX_BATCH_INTERVAL = 60.0
# Settings a running receiver cannot take on SIGHUP: sockets, store, HTTP and
# the incident detector are set up once.
RESTART_ONLY = ("ports", "bind", "db", "store", "workers", "http", "rcvbuf", "retain", "max_size",
                "silent_after", "forward", "files", "web")


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
    store: str | None = None
    """A ClickHouse store instead of SQLite: `clickhouse://HOST:PORT/DATABASE`, with
    `?cluster=NAME` for a cluster of servers (docs/scale-out.md)."""
    workers: int = 0
    """Receiver processes; 0 means one per core."""
    http: str | None = "127.0.0.1:6680"
    """Address:port of the HTTP endpoints (/metrics, /api/v1/…); None turns them off."""
    web: str | None = None
    """Address:port to serve the web view on (docs/web.md); None: not served. Its
    token, when bound beyond loopback, is $NETCONSOLE_WEB_TOKEN."""
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
    sender_budget: float = 2000.0
    """Records a second one sender may average while the receiver is behind; its excess
    is shed (crash reports never are) so that a noisy host cannot silence the others.
    It saves up 1 s worth while quiet. 0: no budget."""
    forward: tuple[str, ...] = ()
    """Syslog servers to forward every stored record to (RFC 5424):
    `syslog+udp://HOST:PORT` or `syslog+tcp://HOST:PORT` (docs/outputs.md)."""
    files: str | None = None
    """Also append every stored record to DIR/<host>/<YYYY-MM-DD>.log."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Tables of the file this layer does not own (alerts, …), passed on as they are."""

    def __post_init__(self) -> None:
        _check_list(self.ports, "ports", int, "[6666]")
        if not self.ports:
            raise ConfigError("ports: give at least one port")
        for p in self.ports:
            if not 1 <= p <= 65535:
                raise ConfigError(f"port {p} is not between 1 and 65535")
        _check_list(self.bind, "bind", str, '["::"]')
        for a in self.bind:
            try:
                ipaddress.ip_address(a)
            except ValueError:
                raise ConfigError(f"bind address {a!r} is not an IP address") from None
        _check_list(self.allow, "allow", str, '["10.0.0.0/8"]')
        for c in self.allow:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError:
                raise ConfigError(f"--allow {c!r} is not a CIDR such as 10.0.0.0/8") from None
        _check_optional_str(self.db, "db")
        _check_store(self.store, self.db)
        _check_int(self.workers, "workers", 0, MAX_WORKERS)
        http: Any = self.http  # the file may give anything
        if http is False:
            object.__setattr__(self, "http", None)
        elif http is not None:
            if not isinstance(http, str):
                raise ConfigError(f"http must be a string such as \"127.0.0.1:6680\" or false, "
                                  f"not {http!r}")
            try:
                parse_hostport(http)
            except ConfigError as exc:
                raise ConfigError(f"http: {exc}") from None
        web: Any = self.web
        if web is False:  # TOML has no null
            object.__setattr__(self, "web", None)
        elif web is not None:
            if not isinstance(web, str):
                raise ConfigError(f"web must be a string such as \"127.0.0.1:6681\" or false, "
                                  f"not {web!r}")
            try:
                parse_hostport(web)
            except ConfigError as exc:
                raise ConfigError(f"web: {exc}") from None
        _check_optional_str(self.jsonl, "jsonl")
        if self.jsonl is not None and self.jsonl != "-":
            _check_writable(self.jsonl)
        if not isinstance(self.quiet, bool):
            raise ConfigError(f"quiet must be true or false, not {self.quiet!r}")
        _check_int(self.rcvbuf, "rcvbuf", 1, MAX_RCVBUF)
        _check_optional_str(self.retain, "retain")
        _check_optional_str(self.max_size, "max-size")
        try:
            if self.retain is not None:
                parse_duration(self.retain)
        except StoreError as exc:
            raise ConfigError(f"retain: {exc}") from None
        try:
            if self.max_size is not None:
                parse_size(self.max_size)
        except StoreError as exc:
            raise ConfigError(f"max-size: {exc}") from None
        object.__setattr__(self, "batch_interval",
                           _seconds(self.batch_interval, "batch-interval", MAX_BATCH_INTERVAL))
        object.__setattr__(self, "silent_after", _seconds(self.silent_after, "silent-after"))
        budget = self.sender_budget
        if (not isinstance(budget, (int, float)) or isinstance(budget, bool)
                or not math.isfinite(budget) or budget < 0):
            raise ConfigError(f"sender-budget must be a number of records/s >= 0 (0: no "
                              f"budget), not {budget!r}")
        object.__setattr__(self, "sender_budget", float(budget))
        _check_list(self.forward, "forward", str, '["syslog+tcp://127.0.0.1:514"]')
        for url in self.forward:
            try:
                parse_target(url)
            except TargetError as exc:
                raise ConfigError(str(exc)) from None
        _check_optional_str(self.files, "files")
        if self.files is not None:
            _check_files_dir(self.files)
        if not isinstance(self.extra, dict):
            raise ConfigError(f"extra must be a dict of tables, not {self.extra!r}")
        try:
            parse_rules(self.extra.get("alerts"))
        except RuleError as exc:
            raise ConfigError(str(exc)) from None
        except (TypeError, ValueError) as exc:  # a value of a type the rules do not expect
            raise ConfigError(f"alert rules: {exc}") from None

    @property
    def store_target(self) -> str | None:
        """What `open_store` opens: the ClickHouse URL, else the SQLite file (None: default)."""
        return self.store or self.db

    @property
    def store_label(self) -> str:
        """The store for messages: the URL without its password, or the file."""
        if self.store is not None:
            from netconsole.store.clickhouse import parse_url

            return str(parse_url(self.store))
        return str(self.db or default_db_path())

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def replace(self, **changes: Any) -> ListenConfig:
        return dataclasses.replace(self, **changes)


def parse_hostport(text: str) -> tuple[str, int]:
    """`127.0.0.1:6680`, `[::1]:6680` or `:6680` -> (host, port)."""
    try:
        parsed = _hostport.parse_hostport(text, default_host="127.0.0.1")
    except _hostport.HostPortError as exc:
        raise ConfigError(str(exc)) from None
    return parsed.scoped, parsed.port


def _kind(t: type) -> str:
    return {int: "integers", str: "strings"}.get(t, t.__name__)


def _check_list(value: Any, name: str, item: type, example: str) -> None:
    # bool is an int to Python, never to an operator.
    if not isinstance(value, tuple):
        raise ConfigError(f"{name} must be a list such as {example}, not {value!r}")
    for v in value:
        if not isinstance(v, item) or isinstance(v, bool):
            raise ConfigError(f"{name} must be a list of {_kind(item)} such as {example}, "
                              f"not {list(value)!r}")


def _check_optional_str(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, not {value!r}")


def _check_store(store: Any, db: Any) -> None:
    """`store` is a ClickHouse URL netconsole can use, and not given with `db`."""
    _check_optional_str(store, "store")
    if store is None:
        return
    if db is not None:
        raise ConfigError("give db (a SQLite file) or store (a ClickHouse URL), not both")
    from netconsole.store.clickhouse import parse_url  # its HTTP client only when used

    try:
        parse_url(store)
    except StoreError as exc:
        raise ConfigError(f"store: {exc}") from None


def _check_int(value: Any, name: str, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, not {value!r}")
    if value < low:
        raise ConfigError(f"{name} cannot be negative" if low == 0 else
                          f"{name} must be between {low} and {high}, not {value}")
    if value > high:
        raise ConfigError(f"{name} must be at most {high}" if low == 0 else
                          f"{name} must be between {low} and {high}, not {value}")


def _seconds(value: Any, name: str, most: float | None = None) -> float:
    """A duration setting as float seconds: a number, or a string such as `10m`."""
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except StoreError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigError(f"{name} must be a number of seconds or a duration such as "
                          f"\"10m\", not {value!r}")
    if not math.isfinite(seconds):
        raise ConfigError(f"{name} must be a finite number of seconds, not {value!r}")
    if seconds <= 0:
        raise ConfigError(f"{name} must be more than 0 seconds, not {value!r}")
    if most is not None and seconds > most:
        raise ConfigError(f"{name} must be at most {most:g} seconds, not {value!r}")
    return seconds


def _check_writable(path: str) -> None:
    """The jsonl file can be opened for appending (checked before anything starts)."""
    if not path:
        raise ConfigError("jsonl: give a file name, or - for stdout")
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"jsonl: {path} is a directory; give a file in it")
    parent = p.parent
    if not parent.is_dir():
        raise ConfigError(f"jsonl: directory {parent} does not exist")
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"jsonl: cannot write {path} (permission denied)")
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"jsonl: cannot write in {parent} (permission denied)")


def _check_files_dir(path: str) -> None:
    """The --files directory exists and is writable, or can be made."""
    if not path:
        raise ConfigError("files: give a directory")
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise ConfigError(f"files: {path} is not a directory")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ConfigError(f"files: cannot write in {path} (permission denied)")
        return
    parent = next((a for a in p.absolute().parents if a.exists()), None)
    if parent is None or not parent.is_dir():
        raise ConfigError(f"files: cannot make {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"files: cannot make {path} (no permission in {parent})")


def reloaded(running: ListenConfig, fresh: ListenConfig) -> tuple[ListenConfig, list[str]]:
    """What a running receiver takes from `fresh` on SIGHUP, and the names of
    the settings it had to keep (they change on restart only)."""
    ignored = [name for name in RESTART_ONLY if getattr(fresh, name) != getattr(running, name)]
    return fresh.replace(**{name: getattr(running, name) for name in RESTART_ONLY}), ignored


_KEYS = {f.name for f in dataclasses.fields(ListenConfig)} - {"extra"}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a configuration file; keys as in `ListenConfig` (dashes allowed).

    The settings are the `[listen]` table, or the top level of a file without
    one; the other tables (`[[alerts]]`, …) are passed on as `extra`.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if "listen" in data:
        listen = data.pop("listen")
        if not isinstance(listen, dict):
            raise ConfigError(f"{path}: listen must be a table ([listen])")
        stray = [k for k, v in data.items() if not _is_table(v)]
        if stray:
            raise ConfigError(f"{path}: {stray[0]!r} is outside [listen]; move it under [listen]")
        extra = data
    else:
        extra = {k: v for k, v in data.items()
                 if _is_table(v) and k.replace("-", "_") not in _KEYS}
        listen = {k: v for k, v in data.items() if k not in extra}
    out: dict[str, Any] = {}
    for key, value in listen.items():
        name = key.replace("-", "_")
        if name not in _KEYS:
            raise ConfigError(f"{path}: unknown setting {key!r}; known: {', '.join(sorted(_KEYS))}")
        out[name] = tuple(value) if isinstance(value, list) else value
    if extra:
        out["extra"] = extra
    return out


def _is_table(value: Any) -> bool:
    """A `[table]` or an `[[array of tables]]`."""
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value))


def build_config(file_values: dict[str, Any], cli_values: dict[str, Any]) -> ListenConfig:
    """Defaults, then the file, then the options that were given on the command line."""
    merged = {**file_values, **{k: v for k, v in cli_values.items() if v not in (None, ())}}
    try:
        return ListenConfig(**merged)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def render_toml(cfg: ListenConfig) -> str:
    """The effective configuration as TOML: the `[listen]` table, then the other tables."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in cfg.extra.items()
             if not _is_table(v)]  # top-level values must precede every table
    lines.append("[listen]")
    for f in dataclasses.fields(cfg):
        if f.name == "extra":
            continue
        value = getattr(cfg, f.name)
        key = f.name.replace("_", "-")
        if value is None:
            lines.append(f"{key} = false" if f.name == "http" else f"# {key} = (unset)")
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    for name, value in cfg.extra.items():
        if isinstance(value, dict):
            lines += ["", f"[{_toml_key(name)}]", *_toml_body(value)]
        elif _is_table(value):
            for table in value:
                lines += ["", f"[[{_toml_key(name)}]]", *_toml_body(table)]
    return "\n".join(lines) + "\n"


def _toml_body(table: dict[str, Any]) -> list[str]:
    # Nested tables are written inline: valid TOML, and the same data read back.
    return [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    # JSON's escapes are TOML's, except that TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    return _toml_string(str(v))
