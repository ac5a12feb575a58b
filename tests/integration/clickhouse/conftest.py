"""Two real ClickHouse servers for the whole session: the shards of cluster `nc`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.clickhouse.server import Cluster, available


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not available():
        pytest.skip("clickhouse-server is not installed "
                    "(tests/integration/clickhouse/ci-prepare.sh installs it)")
    cluster = Cluster(tmp_path_factory.mktemp("clickhouse"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
