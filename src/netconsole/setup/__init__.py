"""`netconsole setup`: plan a kernel netconsole target from the kernel's own view of
the network, apply it (configfs or module parameter), persist it, and prove
delivery with a nonce the receiver is asked about.

Layers: `plan` (pure: ties `route` (interface, source), `nexthop` (the MAC),
`caps` (method, format) together; `steps` turns a plan into configfs writes),
`resolve` (reads the host, provokes neighbour resolution), `apply` (configfs
and modprobe, kernel errors in words via `errors`), `persist` (systemd unit,
modprobe.d, boot parameter), `loglevel`, `status`, `verify`; `run` ties them.
"""

from netconsole.setup.apply import Applied, ApplyError
from netconsole.setup.caps import Capabilities, KernelFacts, Method
from netconsole.setup.errors import KernelError, PlanError, explain
from netconsole.setup.nexthop import NextHop
from netconsole.setup.plan import Plan, plan_target
from netconsole.setup.route import NetView, Receiver
from netconsole.setup.run import SetupReport, SetupRequest, run_remove, run_setup, run_status
from netconsole.setup.steps import Step, configfs_steps
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
