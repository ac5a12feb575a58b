"""The checks: pure functions `Facts -> list[Finding]`, run in this order."""

from __future__ import annotations

from collections.abc import Callable

from netconsole.doctor.checks.configfs import check_configfs
from netconsole.doctor.checks.console import check_console
from netconsole.doctor.checks.interface import check_interfaces
from netconsole.doctor.checks.kernel import check_kernel
from netconsole.doctor.checks.logs import check_logs
from netconsole.doctor.checks.params import check_params
from netconsole.doctor.checks.route import check_routes
from netconsole.doctor.facts import Facts
from netconsole.doctor.findings import Finding

Check = Callable[[Facts], list[Finding]]

CHECKS: tuple[Check, ...] = (
    check_kernel,
    check_params,
    check_configfs,
    check_interfaces,
    check_routes,
    check_console,
    check_logs,
)

__all__ = ["CHECKS", "Check"]
