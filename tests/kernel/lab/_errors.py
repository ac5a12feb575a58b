"""The lab's one exception: a test that hits it errors, it is never skipped."""

from __future__ import annotations


class LabError(RuntimeError):
    """The lab could not be built or run (no kernel package, no QEMU, a timeout)."""
