#!/bin/sh
# Install Debian's ClickHouse (18.16) for the scale-out tests (tests/integration/clickhouse),
# on Debian 12, as root. The tests start their own servers (own configuration, data
# directory and loopback ports, as two shards of one cluster) and stop them; the
# system's clickhouse-server service is neither configured nor started.
# scripts/test calls it before pytest.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends clickhouse-server clickhouse-client
