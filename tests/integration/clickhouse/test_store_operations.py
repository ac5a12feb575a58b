"""Schema and operations on real servers: migrations, cluster checks, retention."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from netconsole.store import PrebuiltRecords, Retention, StoreError, open_reader, open_store
from netconsole.store._codec import prebuilt_row
from netconsole.store.clickhouse import SCHEMA_VERSION, ClickHouseStore, migrate, parse_url
from netconsole.store.clickhouse._schema import modernize
from netconsole.stream.events import Gap, GapKind, Record, Sender
from netconsole.wire import Mode
from tests.integration.clickhouse.chdb_client import ChdbClient, chdb_session
from tests.integration.clickhouse.server import CLUSTER, Cluster

DAY = 86400.0


def test_the_schema_is_made_on_every_server_once(clickhouse: Cluster) -> None:
    url = clickhouse.url()
    database = url.split("/")[3].split("?")[0]
    for _ in range(2):  # a second start finds everything there
        open_store(url).close()
    for server in clickhouse.servers:
        tables = set(server.query(f"SHOW TABLES FROM {database}").split())
        assert {"records", "records_local", "hosts", "hosts_local", "_migrations"} <= tables
        assert int(server.query(f"SELECT count() FROM {database}._migrations")) == \
            SCHEMA_VERSION
        engine = server.query(f"SELECT engine FROM system.tables WHERE database = "
                              f"'{database}' AND name = 'records'").strip()
        assert engine == "Distributed"


def test_a_cluster_url_must_list_every_server(clickhouse: Cluster) -> None:
    one = clickhouse.servers[0].address
    with pytest.raises(StoreError, match="servers the URL does not list"):
        open_store(f"clickhouse://{one}/partial?cluster={CLUSTER}")
    with pytest.raises(StoreError, match="no cluster 'elsewhere'"):
        open_store(f"clickhouse://{one}/partial?cluster=elsewhere")


def test_readers_need_the_schema(clickhouse: Cluster) -> None:
    with pytest.raises(StoreError, match="start `netconsole listen --store"):
        open_reader(clickhouse.single("never_written"))


def test_a_newer_schema_is_refused(clickhouse: Cluster) -> None:
    url = clickhouse.single()
    open_store(url).close()
    database = url.rsplit("/", 1)[1]
    clickhouse.servers[0].query(f"INSERT INTO {database}._migrations VALUES ('m999_future', 0)")
    with pytest.raises(StoreError, match="newer than this netconsole"):
        open_store(url)
    with pytest.raises(StoreError, match="newer than this netconsole"):
        open_reader(url)


def _days(store: ClickHouseStore, now: float, days: int) -> None:
    s = Sender(host="10.3.3.3", port=6665, local_port=6666)
    for d in range(days):
        at = now - d * DAY
        store.apply([
            *(Record(sender=s, mode=Mode.EXTENDED, received=at + i / 1000, text=b"day %d" % d,
                     facility=0, level=6, seq=d * 100 + i, ts_usec=i) for i in range(10)),
            Gap(sender=s, at=at, kind=GapKind.SEQ, first=d, count=1),
        ])


def test_retention_drops_whole_days_on_every_shard(clickhouse: Cluster) -> None:
    now = time.time()
    store = open_store(clickhouse.url(), retention=Retention(max_age=3 * DAY))
    assert isinstance(store, ClickHouseStore)
    _days(store, now, 6)
    done = store.enforce_retention(now)
    # Days 4 and 5 end before now - 3 d; day 3 holds that time: it stays, whole.
    assert (done.records, done.events) == (20, 2)
    days = {int(r.record.text.split()[1]) for r in store.reader.export()}
    assert days == {0, 1, 2, 3}
    assert store.enforce_retention(now).records == 0


def test_retention_by_size_drops_the_oldest_days_but_today(clickhouse: Cluster) -> None:
    now = time.time()
    store = open_store(clickhouse.url(), retention=Retention(max_bytes=1))
    assert isinstance(store, ClickHouseStore)
    _days(store, now, 4)
    assert store.used_bytes() > 1
    store.enforce_retention(now)
    assert {r.record.text for r in store.reader.export()} == {b"day 0"}


def test_modern_extras_need_a_current_server(clickhouse: Cluster) -> None:
    with pytest.raises(StoreError, match=r"is 18\.16\.1: modern=1 needs 20\.3"):
        open_store(clickhouse.single() + "?modern=1")


def test_modern_extras_on_a_current_engine(tmp_path: Path) -> None:
    """On chDB (today's ClickHouse): the token index, and TTLs from `--retain`."""
    if chdb_session is None:
        pytest.skip("chDB is not installed (pip install chdb)")
    url = parse_url("clickhouse://chdb.invalid/modern?modern=1")
    client = ChdbClient(url, tmp_path / "chdb")
    migrate(client, url)
    for _ in range(2):  # at every start
        modernize(client, url, retain=30 * DAY)
    records = client.execute("SHOW CREATE TABLE modern.records").decode()
    assert "tokenbf_v1" in records and "TTL" in records and "2592000" in records
    assert "TTL" in client.execute("SHOW CREATE TABLE modern.incidents").decode()


def test_express_rows_an_earlier_run_spooled_are_stored(clickhouse: Cluster) -> None:
    """Rows the express lane built carry only a host id: a receiver that starts
    with another's spool finds their host in the store (`reserve_host` wrote it)."""
    url = clickhouse.url()
    s = Sender(host="10.4.4.4", port=6665, local_port=6666)
    records = [Record(sender=s, mode=Mode.EXTENDED, received=time.time() + i / 10,
                      text=b"lane %d" % i, facility=0, level=6, seq=i, ts_usec=i)
               for i in range(5)]
    first = open_store(url)
    host = first.reserve_host(s)
    assert host is not None and first.committed_host(s) == host
    rows = [row for r in records if (row := prebuilt_row(r, *host)) is not None]
    first.close()
    later = open_store(url)  # the next run, which knows nothing of the host yet
    assert s in later.known_senders()
    later.apply([PrebuiltRecords(rows)])
    assert [x.record for x in later.reader.export()] == records
    with pytest.raises(ValueError, match="unknown host ids"):
        later.apply([PrebuiltRecords([rows[0]._replace(host_id=12345)])])
