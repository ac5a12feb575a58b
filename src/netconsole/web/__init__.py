"""The web view: the fleet, a host's timeline, incidents, the live tail and search,
in a browser. Served by `netconsole web`, or by `netconsole listen --web`.

See docs/web.md; the pages and their security are described in `web/app.py`.
"""

try:  # the `web` extra: not among the receiver's own dependencies
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:
    raise ImportError(f"the web view needs {exc.name}: pip install 'netconsole[web]'") from None

from netconsole.web._server import (
    DEFAULT_PORT,
    WebServer,
    exposure_warnings,
    is_loopback,
    web_for_listen,
)
from netconsole.web.app import (
    CSP,
    TOKEN_ENV,
    ClickHouseSource,
    Source,
    SQLiteSource,
    WebConfig,
    WebReader,
    clickhouse_source,
    create_app,
    source_for,
    sqlite_source,
)

__all__ = [
    "CSP",
    "DEFAULT_PORT",
    "TOKEN_ENV",
    "ClickHouseSource",
    "SQLiteSource",
    "Source",
    "WebConfig",
    "WebReader",
    "WebServer",
    "clickhouse_source",
    "create_app",
    "exposure_warnings",
    "is_loopback",
    "source_for",
    "sqlite_source",
    "web_for_listen",
]
