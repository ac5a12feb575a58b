"""Real ClickHouse servers (Debian's `clickhouse-server`, 18.16) started by the tests.

Each runs in the foreground with its own configuration, data directory and
loopback ports under the test session's tmp directory: nothing of the system's
configuration is read, and the system service is never started. `Cluster`
starts two as the two shards of one cluster (`nc`), each knowing the other's
native port; a Distributed table over them spreads a store's rows by host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.integration.listen_harness import _die_with_parent, free_tcp_port

CLICKHOUSE = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
CLUSTER = "nc"

_CONFIG = """\
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/server.log</log>
    <errorlog>{dir}/error.log</errorlog><size>10M</size><count>1</count></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <interserver_http_port>{interserver}</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <user_files_path>{dir}/user_files/</user_files_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <users_config>{dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <remote_servers><{cluster}>{shards}</{cluster}></remote_servers>
</yandex>
"""
_SHARD = "<shard><replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>"
_USERS = """\
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"""


def available() -> bool:
    return os.access(CLICKHOUSE, os.X_OK)


class Server:
    """One clickhouse-server on 127.0.0.1, HTTP on `http_port`."""

    def __init__(self, directory: Path, tcp_ports: list[int], index: int) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tcp_port = tcp_ports[index]
        self.http_port = free_tcp_port()
        shards = "".join(_SHARD.format(tcp=p) for p in tcp_ports)
        (self.dir / "config.xml").write_text(_CONFIG.format(
            dir=self.dir, http=self.http_port, tcp=self.tcp_port,
            interserver=free_tcp_port(), cluster=CLUSTER, shards=shards))
        (self.dir / "users.xml").write_text(_USERS)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def start(self) -> None:
        out = (self.dir / "stdout").open("ab")
        self.proc = subprocess.Popen(
            [CLICKHOUSE, f"--config-file={self.dir / 'config.xml'}"], stdout=out, stderr=out,
            cwd=self.dir, start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 60
        while not self.up():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"clickhouse-server did not start: "
                                   f"{(self.dir / 'stdout').read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def up(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.address}/ping", timeout=1) as r:
                return bool(r.read().startswith(b"Ok"))
        except OSError:
            return False

    def query(self, sql: str) -> str:
        request = urllib.request.Request(f"http://{self.address}/", data=sql.encode())
        with urllib.request.urlopen(request, timeout=60) as r:
            return str(r.read().decode())

    def kill9(self) -> None:
        """SIGKILL, as a crash: nothing flushed, nothing said."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


class Cluster:
    """Two servers, the two shards of cluster `nc`."""

    def __init__(self, directory: Path) -> None:
        tcp = [free_tcp_port(), free_tcp_port()]
        self.servers = [Server(directory / f"shard{i + 1}", tcp, i) for i in range(2)]
        self._databases = 0

    def start(self) -> None:
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def url(self, database: str | None = None) -> str:
        """A store URL over both servers; a fresh database unless one is named."""
        if database is None:
            self._databases += 1
            database = f"t{os.getpid()}_{self._databases}"
        nodes = ",".join(s.address for s in self.servers)
        return f"clickhouse://{nodes}/{database}?cluster={CLUSTER}"

    def single(self, database: str | None = None) -> str:
        """A store URL on the first server alone (no cluster)."""
        if database is None:
            self._databases += 1
            database = f"s{os.getpid()}_{self._databases}"
        return f"clickhouse://{self.servers[0].address}/{database}"
