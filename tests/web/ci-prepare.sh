#!/bin/sh
# Install the browser that the web view's tests (tests/web) drive, on Debian 12, as
# root: Debian's Chromium and its ChromeDriver (/usr/bin/chromium,
# /usr/bin/chromedriver), driven by Selenium (the project's test extras), and a
# font for the screenshots. scripts/test calls it after the kernel lab's
# `apt-get update`.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core
