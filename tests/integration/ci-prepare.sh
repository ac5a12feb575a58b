#!/bin/sh
# Install the real servers the integration tests run against, on Debian 12, as root:
# rsyslog (listen --forward into a real rsyslogd, started by the tests themselves on a
# loopback port with their own configuration; the system's rsyslog is neither
# configured nor used) and logrotate (contrib/netconsole.logrotate, run as shipped).
# scripts/test calls it before pytest.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends rsyslog logrotate
