"""`netconsole setup`: plan a kernel netconsole target from the kernel's own view of
the network, apply it (configfs or module parameter), persist it, and prove
delivery with a nonce the receiver is asked about.

Layers: `plan` (pure: route, source, next hop, MAC, format, configfs steps),
`resolve` (reads the host, provokes neighbour resolution), `apply` (configfs
and modprobe, kernel errors in words via `errors`), `persist` (systemd unit,
modprobe.d, boot parameter), `loglevel`, `status`, `verify`; `run` ties them.
"""

from netconsole.setup.apply import Applied, ApplyError
from netconsole.setup.errors import KernelError, explain
from netconsole.setup.plan import (
    Capabilities,
    KernelFacts,
    Method,
    NetView,
    NextHop,
    Plan,
    PlanError,
    Receiver,
    Step,
    configfs_steps,
    plan_target,
)
from netconsole.setup.run import SetupReport, SetupRequest, run_remove, run_setup, run_status
from netconsole.setup.verify import Outcome, Verification

__all__ = [
    "Applied",
    "ApplyError",
    "Capabilities",
    "KernelError",
    "KernelFacts",
    "Method",
    "NetView",
    "NextHop",
    "Outcome",
    "Plan",
    "PlanError",
    "Receiver",
    "SetupReport",
    "SetupRequest",
    "Step",
    "Verification",
    "configfs_steps",
    "explain",
    "plan_target",
    "run_remove",
    "run_setup",
    "run_status",
]
