"""The one exception the store raises for problems a user can fix."""

from __future__ import annotations


class StoreError(Exception):
    """A database that is missing, too new, not migrated, or a bad option value.

    The CLI turns it into `click.ClickException`; the message is meant for users.
    """


class StoreUnavailable(StoreError):
    """The store cannot write now -- its server is down, overloaded or out of
    reach -- while the data is fine: the receiver holds the batch and retries
    (collector/_spool.py), never sets any of it aside."""
