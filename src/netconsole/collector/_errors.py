"""The collector's own errors, in a module of their own so that both the
supervisor and the worker it starts can raise them without importing each other."""

from __future__ import annotations


class ListenError(RuntimeError):
    """`listen` cannot start; the message says why and what to do."""
