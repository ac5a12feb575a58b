"""`clickhouse://` URLs, the dialect's literals, the ids and ordinals: no server needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from netconsole.collector import ConfigError, build_config
from netconsole.store import StoreError
from netconsole.store.clickhouse import is_clickhouse_url, parse_url
from netconsole.store.clickhouse._dialect import quote
from netconsole.store.clickhouse._ids import Ordinals, host_id, row_id
from netconsole.store.clickhouse._reader import field_text, fts_match, fts_words
from netconsole.store.clickhouse._url import Node
from netconsole.stream.events import Sender


def test_a_cluster_url() -> None:
    url = parse_url("clickhouse://nc:s%40cret@ch1:8124,[::1]:9000,ch3/logs?cluster=fleet"
                    "&spool=/var/spool/nc")
    assert url.nodes == (Node(host="ch1", port=8124), Node(host="::1", port=9000),
                         Node(host="ch3", port=8123))
    assert (url.database, url.cluster, url.user, url.password) == ("logs", "fleet", "nc",
                                                                   "s@cret")
    assert url.spool_base.parent == Path("/var/spool/nc")
    assert "s@cret" not in str(url) and str(url).startswith("clickhouse://nc@ch1:8124,")
    assert url.nodes[1].url == "http://[::1]:9000/"


@pytest.mark.parametrize(("text", "says"), [
    ("clickhouse://h:1/", "give the database"),
    ("clickhouse:///db", "give the server"),
    ("clickhouse://h:99999/db", "port"),
    ("clickhouse://h:1/my-db", "letters, digits"),
    ("clickhouse://h:1/db?cluster=a;b", "letters, digits"),
    ("clickhouse://h:1,g:2/db", r"need \?cluster"),
    ("clickhouse://h:1/db?replicas=2", "unknown option"),
    ("clickhouse://h:1/db?cluster=", "with a value"),
    ("clickhouse://h:1,h:1/db?cluster=c", "twice"),
    ("clickhouse://h:1/db?modern=yes", "modern"),
])
def test_bad_urls_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(StoreError, match=says):
        parse_url(text)


def test_only_clickhouse_urls_are_urls() -> None:
    assert is_clickhouse_url("clickhouse://h/db")
    assert not is_clickhouse_url("clickhouse.db")
    assert not is_clickhouse_url(Path("clickhouse://h/db"))


def test_listen_config_takes_a_store_url() -> None:
    cfg = build_config({}, {"store": "clickhouse://127.0.0.1:8123/nc"})
    assert cfg.store_target == "clickhouse://127.0.0.1:8123/nc"
    assert cfg.store_label == "clickhouse://127.0.0.1:8123/nc"
    with pytest.raises(ConfigError, match="not both"):
        build_config({"db": "x.db"}, {"store": "clickhouse://127.0.0.1:8123/nc"})
    with pytest.raises(ConfigError, match=r"store: .*give the database"):
        build_config({"store": "clickhouse://127.0.0.1:8123"}, {})
    with pytest.raises(ConfigError, match="store must be a string"):
        build_config({"store": 5}, {})


def test_quote_keeps_any_bytes_exact() -> None:
    assert quote("it's a \\ test") == "'it\\'s a \\\\ test'"
    assert quote(b"a\x00b\xff\n") == "'a\\x00b\\xFF\\x0A'"
    assert quote("ünï €") == "'ünï €'"


def test_ids_are_the_same_for_the_same_thing() -> None:
    s = Sender(host="10.0.0.1", port=6665, local_port=6666)
    assert host_id(s) == host_id(Sender(host="10.0.0.1", port=6665, local_port=6666))
    assert host_id(s) != host_id(Sender(host="10.0.0.1", port=6665, local_port=6667))
    assert 0 <= host_id(s) < 2**63
    assert row_id(1, 2.5, 0, b"x") == row_id(1, 2.5, 0, b"x") != row_id(1, 2.5, 1, b"x")


def test_ordinals_give_a_retried_batch_the_same_numbers() -> None:
    o = Ordinals(keep=2)
    o.begin()
    first = [o.take(1.0), o.take(1.0), o.take(2.0)]
    o.rollback()  # the batch was not stored
    o.begin()
    assert [o.take(1.0), o.take(1.0), o.take(2.0)] == first == [0, 1, 0]
    o.commit()
    o.begin()
    assert o.take(1.0) == 2  # the next wake-up's record at the same time
    o.take(3.0)
    o.commit()
    assert o.take(1.0) == 0  # the oldest times are forgotten past `keep`


def test_word_matching_follows_fts5() -> None:
    words = fts_words("eth0: link")
    assert words == [["eth0"], ["link"]]
    assert fts_match("e1000e eth0: NIC Link is Down", words)
    assert not fts_match("xeth0 link", words)
    assert fts_match("rcu_sched kthread", fts_words("rcu_sched"))
    assert not fts_match("sched rcu", fts_words("rcu_sched"))
    assert fts_match("nothing here", fts_words("b12"), field_text(["rack"], ["b12"]))
    assert field_text(["cpu", "rack"], ["1", "b12"]) is None  # starts with sysdata
    assert field_text(["rack", "cpu"], ["b12", "1"]) == "b12"
    with pytest.raises(StoreError):
        fts_words("!!! ...")
