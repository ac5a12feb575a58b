"""A panic (`echo c > /proc/sysrq-trigger`) on a real kernel, seen by netconsole.

Known, and asserted as it is (qemu-lab.md, captures/README.md):
* 6.12 (legacy console, printed synchronously) sends the whole panic, down to
  `Rebooting in 1 seconds..`, on every target;
* 7.2 (netconsole runs as a threaded nbcon console) sends the panic only
  partly, if at all: the thread's backlog and the final atomic flush race the
  reboot. In the shared captures nothing after `sysrq: Trigger a crash` arrived;
  in CI runs of this lab, sometimes a few lines did. So on 7.x what arrives after
  the crash must be lines the console printed (nothing invented, nothing
  garbled), and whatever arrived before it must be complete.
"""

from __future__ import annotations

import pytest
from lab import ConsoleLine, Run, compare, decode_port

pytestmark = pytest.mark.kernel

CRASH_LINE = b"sysrq: Trigger a crash"
PANIC_LINE = b"Kernel panic - not syncing: sysrq triggered crash"


def _panic_lines(run: Run) -> list[ConsoleLine]:
    lines = run.console.lines
    start = next(i for i, line in enumerate(lines) if line.text == CRASH_LINE)
    return lines[start:]


def test_panic_is_on_the_console(modparam_run: Run) -> None:
    panic = _panic_lines(modparam_run)
    assert any(line.text == PANIC_LINE for line in panic)
    assert len(panic) > 10
    assert modparam_run.boot.returncode == 0  # panic=1 + -no-reboot: QEMU exits


@pytest.mark.parametrize("target", [0, 1, 2], ids=["basic", "extended", "release"])
def test_panic_over_netconsole(modparam_run: Run, target: int) -> None:
    run = modparam_run
    panic = _panic_lines(run)
    decoded = decode_port(run.datagrams, run.ports[target])
    if run.kernel.major < 7:
        result = compare(panic, decoded.records)
        assert not result.missing, result.report()
        assert panic[-1].text.startswith(b"Rebooting in")
    else:
        crash_ts = panic[0].ts_usec
        after = [r for r in decoded.records if (r.ts_usec or 0) >= crash_ts]
        assert not compare(panic, after).extra, "a panic record the console never printed"
        before = [line for line in run.console.lines if line.ts_usec < crash_ts]
        result = compare(before[-5:], decoded.records)
        assert not result.missing, result.report()
