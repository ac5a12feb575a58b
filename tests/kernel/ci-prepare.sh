#!/bin/sh
# Install what the real-kernel lab (tests/kernel) needs on a fresh Debian 12 machine.
# Run as root; .ci/run calls it before `python -m pytest tests/kernel -m kernel`.
# The kernels and Debian's Python are not installed here: the lab downloads them
# itself (apt-get download, cached in tests/kernel/.cache) and fails, never skips,
# when it cannot.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    qemu-system-x86 \
    busybox-static \
    cpio \
    xz-utils \
    zstd \
    file \
    util-linux \
    ca-certificates \
    make \
    gcc-12 \
    dwarves \
    patch
# make, gcc-12 and dwarves (pahole, for the modules' BTF): out-of-tree modules
# (np_shim, labtrig) built against Debian's headers of the lab's 6.12 kernel, which
# was built with gcc-12. The headers themselves are not installed here: the lab
# fetches the exact version of its kernel (apt-get download, tests/kernel/.cache).
# patch: the ENA patch test (tests/unit/kernel/test_shim.py).
# Python for the builder: pip builds the project's wheel (build isolation fetches
# setuptools) and installs its pure-Python dependencies for the guest.
python3 -m pip --version >/dev/null
