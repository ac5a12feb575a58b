"""The web view: a Starlette app over a store backend, read-only.

Pages (all GET; server-rendered HTML, a little JavaScript of ours in static/):

* `/`: the fleet, one row per machine, with counts, status and the pictures
  (records and incidents over time, machines by status); sort, filter, pages.
* `/host?h=NAME`: one machine's records as a timeline (boots, gaps, reboots and
  incidents inline), its record rate; `before=ID` scrolls back (`/host/records`
  is the same rows as a fragment, which host.js fetches as you scroll up),
  `around=ID` centres on a record, `at=TIME` jumps to a time.
* `/incidents`: incidents grouped by fingerprint, and the newest ones;
  `/incident/ID`: one whole report, its call trace with the culprit marked, and
  the host's records around it.
* `/live`: the live tail; live.js follows `/live/events` (server-sent events).
* `/search?q=…`: full-text search, matches marked, each linking into its host's
  timeline.

The app reads through a `Source`: a reader (the `RecordQueries` the CLI uses,
plus the incident queries) and the `ViewQueries` of store/_views.py. Both
stores give them: `source_for(db)` opens SQLite (`SQLiteSource`) or, for a
`clickhouse://` URL, ClickHouse (`ClickHouseSource`), the pages unchanged.
Record ids are SQLite's counts or ClickHouse's 63-bit hashes: parameters and
`Last-Event-ID` take any id below 2^63.

Hostile text is data: every template autoescapes (web/_render.py); every
response carries a strict Content-Security-Policy (scripts, styles, images and
connections only from this origin, no inline script or style, no plugins, no
framing, no <base>), `nosniff`, and no referrer. With a token (`netconsole web
--token`), nothing but the static files and the login page answers without it.
Bound to loopback, requests must name a loopback Host (a DNS-rebinding page
cannot read it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode

import anyio
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netconsole.incidents import Kind
from netconsole.store import (
    DEFAULT_SILENT_AFTER,
    IncidentGroup,
    RecordFilter,
    RecordQueries,
    SQLiteReader,
    StoredIncident,
    StoredRecord,
    StoreError,
    open_reader,
    parse_level,
    parse_since,
)
from netconsole.store._views import FLEET_SORTS, SQLiteViews, ViewQueries
from netconsole.store.clickhouse import (
    ClickHouseReader,
    ClickHouseViews,
    is_clickhouse_url,
    open_clickhouse_reader,
    parse_url,
)
from netconsole.web import _svg
from netconsole.web._render import (
    ago,
    highlight_terms,
    level_class,
    level_name,
    render,
    show,
    uptime,
    when,
)
from netconsole.web._rows import frame_rows, timeline_rows

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
       " connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none';"
       " form-action 'self'")
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
COOKIE = "netconsole_token"
TOKEN_ENV = "NETCONSOLE_WEB_TOKEN"

# span name -> (seconds per bucket, buckets)
SPANS = {"1h": (60.0, 60), "24h": (3600.0, 24), "7d": (3600.0, 168)}
FLEET_PAGE = 200
SEARCH_LIMITS = (100, 500, 1000)


class WebReader(RecordQueries, Protocol):
    """The reader queries the pages make: the CLI's `RecordQueries` and the
    incident queries (what `SQLiteReader` and `ClickHouseReader` offer)."""

    def incidents(
        self,
        *,
        host: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        fingerprint: str | None = None,
        limit: int = 100,
    ) -> list[StoredIncident]: ...

    def incident(self, incident_id: int) -> StoredIncident | None: ...

    def incidents_top(
        self, *, since: float | None = None, limit: int = 20
    ) -> list[IncidentGroup]: ...


class Source(Protocol):
    """One backend connection: its reader and its views, used by one request at a time."""

    @property
    def reader(self) -> WebReader: ...

    @property
    def views(self) -> ViewQueries: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class SQLiteSource:
    sqlite: SQLiteReader

    @property
    def reader(self) -> WebReader:
        return self.sqlite

    @property
    def views(self) -> ViewQueries:
        return SQLiteViews(self.sqlite)

    def close(self) -> None:
        self.sqlite.close()


def sqlite_source(db: Path | str | None, *, silent_after: float = DEFAULT_SILENT_AFTER
                  ) -> Callable[[], Source]:
    """Opens a read-only SQLite reader on `db` (default path when None) per call."""
    path = Path(db) if isinstance(db, str) else db  # a file: never a clickhouse:// URL
    return lambda: SQLiteSource(open_reader(path, silent_after=silent_after))


@dataclass(slots=True)
class ClickHouseSource:
    clickhouse: ClickHouseReader

    @property
    def reader(self) -> WebReader:
        return self.clickhouse

    @property
    def views(self) -> ViewQueries:
        return ClickHouseViews(self.clickhouse)

    def close(self) -> None:
        self.clickhouse.close()


def clickhouse_source(url: str, *, silent_after: float = DEFAULT_SILENT_AFTER
                      ) -> Callable[[], Source]:
    """Opens a reader on the ClickHouse store at `url` per call (each with its own
    keep-alive connections; the schema checked as it opens).

    Raises:
        StoreError: a URL that does not parse.
    """
    parsed = parse_url(url)
    return lambda: ClickHouseSource(open_clickhouse_reader(parsed, silent_after=silent_after))


def source_for(db: Path | str | None, *, silent_after: float = DEFAULT_SILENT_AFTER
               ) -> Callable[[], Source]:
    """The store `--db` names: a `clickhouse://` URL, else a SQLite file (default
    path when None).

    Raises:
        StoreError: a ClickHouse URL that does not parse.
    """
    if isinstance(db, str) and is_clickhouse_url(db):
        return clickhouse_source(db, silent_after=silent_after)
    return sqlite_source(db, silent_after=silent_after)


class Pool:
    """Sources kept open between requests, one per request at a time (an SQLite
    connection keeps its page cache; one shared by threads would interleave)."""

    def __init__(self, open_source: Callable[[], Source], keep: int = 8) -> None:
        self.open_source = open_source
        self.keep = keep
        self._idle: list[Source] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def get(self) -> Iterator[Source]:
        with self._lock:
            source = self._idle.pop() if self._idle else None
        if source is None:
            source = self.open_source()
        try:
            yield source
        except BaseException:
            source.close()  # it may be in a bad state; the next request opens another
            raise
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(source)
                return
        source.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for source in idle:
            source.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class WebConfig:
    """How the app answers.

    Attributes:
        token: requests must carry it (cookie set by /login or `?token=`, or
            `Authorization: Bearer`); None: no token.
        allowed_hosts: Host header names accepted; None accepts any (bound to
            a non-loopback address, where the token is the protection).
        silent_after: seconds without a record before a host is silent.
        poll: seconds between the live tail's looks at the store.
    """

    token: str | None = None
    allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS
    silent_after: float = DEFAULT_SILENT_AFTER
    poll: float = 0.25


class BadRequest(Exception):
    """A parameter that cannot be used; the message is shown on the page."""


class NotFound(Exception):
    """Nothing by that name or id."""


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})


def _page(handler: Callable[[Pages, Request], Response]) -> Callable[[Pages, Request], Response]:
    """A page handler whose failures are pages: a bad parameter is a 400, a missing
    host or incident a 404, a store that cannot answer a 503; anything else a 500
    with one line on stderr (never a traceback to the browser)."""

    @functools.wraps(handler)
    def wrapped(self: Pages, request: Request) -> Response:
        try:
            return handler(self, request)
        except BadRequest as exc:
            return self.error(request, 400, str(exc))
        except NotFound as exc:
            return self.error(request, 404, str(exc))
        except StoreError as exc:
            return self.error(request, 503, str(exc))
        except Exception as exc:
            print(f"netconsole web: GET {request.url.path} failed: {exc!r}", file=sys.stderr)
            return self.error(request, 500, "internal error; see the server's log")

    return wrapped


ID_LIMIT = 2**63 - 1
"""The largest record id: SQLite's are counts, ClickHouse's hashes of 63 bits."""


def _whole(value: str) -> int | None:
    """A decimal id or count (at most ID_LIMIT); None when it is not one."""
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > ID_LIMIT:
        return None
    return int(value)


def _int(params: QueryParams, name: str, low: int = 0) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    assert value is not None
    number = _whole(value)
    if number is None or number < low:
        raise BadRequest(f"{name} must be a whole number of at least {low}")
    return number


def _choice(params: QueryParams, name: str, options: Sequence[str], default: str) -> str:
    value = params.get(name) or default
    return value if value in options else default


def _since(params: QueryParams, now: float) -> float | None:
    value = (params.get("since") or "").strip()
    if not value:
        return None
    try:
        return parse_since(value, now)
    except StoreError as exc:
        raise BadRequest(str(exc)) from None


def _level(params: QueryParams) -> int | None:
    value = (params.get("level") or "").strip()
    if not value:
        return None
    try:
        return parse_level(value)
    except StoreError as exc:
        raise BadRequest(str(exc)) from None


def _record_filter(params: QueryParams) -> RecordFilter:
    """The record facts `netconsole search` filters on (`--task`, `--cpu`, `--release`,
    `--boot`, `--field KEY=VALUE`), from the search form."""
    fields = []
    for item in params.getlist("field"):
        for line in item.splitlines():
            if not line.strip():
                continue
            key, sep, value = line.strip().partition("=")
            if not sep or not key:
                raise BadRequest(f"{show(line)!r} is not KEY=VALUE (e.g. rack=b12)")
            fields.append((key, value))
    return RecordFilter(cpu=_int(params, "cpu"), task=params.get("task") or None,
                        release=params.get("release") or None, boot=_int(params, "boot"),
                        fields=tuple(fields))


def _window(span: str, now: float) -> tuple[float, float, float]:
    """(since, until, step) of a chart: whole buckets, the last one holding now."""
    step, n = SPANS[span]
    end = (now // step + 1) * step
    return end - n * step, end, step


def host_href(label: str, **params: Any) -> str:
    return "/host?" + urlencode({"h": label, **{k: v for k, v in params.items()
                                                 if v is not None}})


def record_href(stored: StoredRecord) -> str:
    """Where a record is in its host's timeline."""
    label = stored.name or stored.record.sender.host
    return host_href(label, around=stored.id) + f"#r{stored.id}"


class Pages:
    """The handlers; each reads through one pooled `Source`."""

    def __init__(self, pool: Pool, config: WebConfig) -> None:
        self.pool = pool
        self.config = config
        self.stopping = threading.Event()

    def common(self, request: Request, **context: Any) -> dict[str, Any]:
        return {"now": time.time(), "path": request.url.path, "params": dict(request.query_params),
                "ago": ago, "when": when, "host_href": host_href, "record_href": record_href,
                "level_name": level_name, "level_class": level_class, "uptime": uptime,
                "show": show, **context}

    def error(self, request: Request, status: int, message: str) -> Response:
        return _html(render("error.html", **self.common(request, status=status,
                                                        message=message)), status)

    # -- the fleet --------------------------------------------------------------

    @_page
    def fleet(self, request: Request) -> Response:
        p = request.query_params
        status = _choice(p, "status", ("", "live", "silent", "crashed"), "")
        sort = _choice(p, "sort", FLEET_SORTS, "status")
        order = _choice(p, "order", ("asc", "desc"), "asc")
        span = _choice(p, "span", tuple(SPANS), "24h")
        page = _int(p, "page", 1) or 1
        now = time.time()
        since, until, step = _window(span, now)
        with self.pool.get() as src:
            found = src.views.fleet(
                now=now, silent_after=self.config.silent_after, status=status or None,
                needle=(p.get("q") or "").strip() or None, sort=sort,
                descending=order == "desc", offset=(page - 1) * FLEET_PAGE, limit=FLEET_PAGE)
            activity = src.views.activity(since=since, until=until, step=step)
        pages = max(1, -(-found.matched // FLEET_PAGE))
        return _html(render("fleet.html", **self.common(
            request, fleet=found, machines=found.machines, matched=found.matched,
            total=found.total, counts=found.counts, open_incidents=found.open_incidents,
            records=found.records, status=status, q=p.get("q") or "", sort=sort, order=order,
            span=span, page=page, pages=pages, spans=list(SPANS),
            activity=_svg.activity_chart(activity), by_status=_svg.status_chart(found.counts),
        )))

    # -- a host -----------------------------------------------------------------

    def _host_page(self, request: Request, *, fragment: bool) -> Response:
        p = request.query_params
        label = p.get("h") or ""
        if not label:
            raise BadRequest("which host? (h=NAME)")
        before = _int(p, "before", 1)
        after = _int(p, "after", 0)
        around = _int(p, "around", 1)
        at = (p.get("at") or "").strip()
        span = _choice(p, "span", tuple(SPANS), "24h")
        now = time.time()
        with self.pool.get() as src:
            streams = src.views.host_streams(label, now=now,
                                             silent_after=self.config.silent_after)
            if not streams:
                raise NotFound(f"no host named {show(label)!r}")
            ids = [h.id for h in streams]
            if at:
                try:
                    moment = parse_since(at, now)
                except StoreError as exc:
                    raise BadRequest(str(exc)) from None
                around = src.views.record_at(ids, moment)
                if around is None:
                    before = None  # nothing since: the newest page
            page = src.views.timeline(ids, before=before, after=after, around=around)
            if fragment:
                return _html(render("_records.html", **self.common(
                    request, label=label, rows=timeline_rows(page), page=page,
                    multi=len(streams) > 1)))
            since, until, step = _window(span, now)
            activity = src.views.activity(since=since, until=until, step=step, host_ids=ids)
            incidents = src.reader.incidents(host=label, limit=20)
            machine = src.views.machine(label, now=now, silent_after=self.config.silent_after)
        incidents = [i for i in incidents if i.label == label]
        return _html(render("host.html", **self.common(
            request, label=label, streams=streams, machine=machine, page=page,
            rows=timeline_rows(page), multi=len(streams) > 1, span=span, spans=list(SPANS),
            rate=_svg.activity_chart(activity), incidents=incidents[::-1], at=at,
            around=around,
        )))

    @_page
    def host(self, request: Request) -> Response:
        return self._host_page(request, fragment=False)

    @_page
    def host_records(self, request: Request) -> Response:
        return self._host_page(request, fragment=True)

    # -- incidents --------------------------------------------------------------

    @_page
    def incidents(self, request: Request) -> Response:
        p = request.query_params
        now = time.time()
        since = _since(p, now)
        kind = _choice(p, "kind", ("", *(k.value for k in Kind)), "")
        fingerprint = p.get("fingerprint") or None
        host = p.get("host") or None
        with self.pool.get() as src:
            groups = src.reader.incidents_top(since=since, limit=50)
            found = src.reader.incidents(host=host, kind=kind or None, since=since,
                                         fingerprint=fingerprint, limit=200)
        return _html(render("incidents.html", **self.common(
            request, groups=groups, incidents=found[::-1], kinds=[k.value for k in Kind],
            kind=kind, fingerprint=fingerprint or "", host=host or "",
            since=p.get("since") or "")))

    @_page
    def incident(self, request: Request) -> Response:
        incident_id = request.path_params["incident_id"]
        with self.pool.get() as src:
            found = src.reader.incident(incident_id)
            if found is None:
                raise NotFound(f"no incident {incident_id}")
            context = src.views.incident_context(found)
        return _html(render("incident.html", **self.common(
            request, inc=found, context=context, frames=frame_rows(found),
        )))

    # -- live tail --------------------------------------------------------------

    @_page
    def live(self, request: Request) -> Response:
        p = request.query_params
        level = _level(p)
        return _html(render("live.html", **self.common(
            request, host=p.get("host") or "", level=level_name(level) if level is not None
            else "", text=p.get("text") or "", levels=list(range(8)))))

    async def live_events(self, request: Request) -> Response:
        """Server-sent events: each stored record matching the filters, as JSON,
        from the newest 50 (or after `Last-Event-ID` when the browser reconnects)."""
        p = request.query_params
        try:
            level = _level(p)
        except BadRequest as exc:
            return PlainTextResponse(str(exc), status_code=400)
        # The browser's EventSource sends the last id it got when it reconnects.
        after = _whole(request.headers.get("last-event-id", ""))
        host = p.get("host") or None
        text = (p.get("text") or "").strip()
        grep = "(?i)" + re.escape(text) if text else None

        def fetch(after_id: int | None) -> tuple[list[StoredRecord], int]:
            with self.pool.get() as src:
                if after_id is None:
                    found = src.reader.tail(host=host, level=level, grep=grep, limit=50)
                    return found, found[-1].id if found else src.reader.last_id()
                found = src.reader.tail(host=host, level=level, grep=grep, limit=500,
                                        after_id=after_id)
                return found, found[-1].id if found else after_id

        async def stream() -> AsyncIterator[str]:
            last = after
            quiet = 0.0
            yield "retry: 1000\n\n"
            while not self.stopping.is_set():
                try:
                    found, last = await anyio.to_thread.run_sync(fetch, last)
                except StoreError as exc:
                    yield f"event: problem\ndata: {json.dumps(str(exc))}\n\n"
                    found = []
                for stored in found:
                    yield f"id: {stored.id}\ndata: {json.dumps(_live_json(stored))}\n\n"
                quiet = 0.0 if found else quiet + self.config.poll
                if quiet >= 15:  # a comment now and then keeps proxies from closing it
                    quiet = 0.0
                    yield ": idle\n\n"
                await anyio.sleep(self.config.poll)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store"})

    # -- search -----------------------------------------------------------------

    @_page
    def search(self, request: Request) -> Response:
        p = request.query_params
        q = (p.get("q") or "").strip()
        host = (p.get("host") or "").strip() or None
        fts = p.get("fts") == "1"
        limit = _int(p, "limit", 1) or SEARCH_LIMITS[0]
        limit = min(limit, SEARCH_LIMITS[-1])
        now = time.time()
        since = _since(p, now)
        match = _record_filter(p)
        hits: list[StoredRecord] = []
        problem = None
        if q:
            try:
                with self.pool.get() as src:
                    hits = src.reader.search(q, host=host, since=since, limit=limit,
                                             fts_syntax=fts, match=match)
            except StoreError as exc:
                problem = f"cannot search for that: {exc}"  # FTS syntax, or no words
        return _html(render("search.html", **self.common(
            request, q=q, host=host or "", since=p.get("since") or "", fts=fts, limit=limit,
            match=match, fields="\n".join(p.getlist("field")),
            limits=SEARCH_LIMITS, hits=hits[::-1], problem=problem,
            pattern=highlight_terms(q, fts_syntax=fts),
        )), 400 if problem else 200)

    # -- login ------------------------------------------------------------------

    def login_form(self, request: Request, *, status: int = 200, failed: bool = False
                   ) -> Response:
        target = request.query_params.get("next") or "/"
        return _html(render("login.html", **self.common(
            request, target=_safe_target(target), failed=failed)), status)

    async def login(self, request: Request) -> Response:
        if request.method != "POST":
            return self.login_form(request)
        body = await request.body()
        form = parse_qs(body[:4096].decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0]
        target = _safe_target((form.get("next") or ["/"])[0])
        token = self.config.token
        if token is None or hmac.compare_digest(given.encode(), token.encode()):
            reply = RedirectResponse(target, status_code=303)
            if token is not None:
                _set_cookie(reply, token)
            return reply
        return self.login_form(request, status=401, failed=True)


def _safe_target(target: str) -> str:
    """Only a path on this site (never `//elsewhere` or a scheme)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _cookie_value(token: str) -> str:
    return hashlib.sha256(b"netconsole-web\0" + token.encode()).hexdigest()


def _set_cookie(reply: Response, token: str) -> None:
    reply.set_cookie(COOKIE, _cookie_value(token), httponly=True, samesite="strict", path="/")


def _live_json(stored: StoredRecord) -> dict[str, Any]:
    record = stored.record
    label = stored.name or record.sender.host
    return {
        # As text: ClickHouse's ids take 63 bits, a JavaScript number 53.
        "id": str(stored.id), "host": show(label), "href": record_href(stored),
        "time": when(record.received), "level": level_name(record.level),
        "cls": level_class(record.level), "ts": uptime(record.ts_usec),
        "text": show(record.text.decode("utf-8", "surrogateescape")),
        "incomplete": not record.complete,
    }


class Guard:
    """ASGI middleware: security headers on every response; Host and token checks
    before anything else runs; only GET and HEAD (and the login form's POST)."""

    def __init__(self, app: ASGIApp, config: WebConfig, pages: Pages) -> None:
        self.app = app
        self.config = config
        self.pages = pages
        self.cookie = _cookie_value(config.token) if config.token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name.decode()] = value.decode()
            await send(message)

        reply = self.check(scope)
        if reply is not None:
            await reply(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def check(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        if self.config.allowed_hosts is not None:
            name = _host_name(headers.get("host", ""))
            if name not in self.config.allowed_hosts:
                return PlainTextResponse("this server answers to its loopback address only\n",
                                         status_code=421)
        path = scope["path"]
        method = scope["method"]
        if method not in ("GET", "HEAD") and not (method == "POST" and path == "/login"):
            return PlainTextResponse("read-only\n", status_code=405,
                                     headers={"allow": "GET, HEAD"})
        if self.cookie is None or path.startswith("/static/") or path == "/login":
            return None
        token = self.config.token
        assert token is not None
        cookie = SimpleCookie()
        with contextlib.suppress(Exception):
            cookie.load(headers.get("cookie", ""))
        if COOKIE in cookie and hmac.compare_digest(cookie[COOKIE].value, self.cookie):
            return None
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].encode(),
                                                              token.encode()):
            return None
        params = QueryParams(scope.get("query_string", b""))
        given = params.get("token")
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            rest = urlencode([(k, v) for k, v in params.multi_items() if k != "token"])
            reply = RedirectResponse(path + ("?" + rest if rest else ""), status_code=303)
            _set_cookie(reply, token)
            return reply
        if path == "/live/events":
            return PlainTextResponse("token required\n", status_code=401)
        request = Request(scope)
        target = path + ("?" + scope["query_string"].decode("latin-1")
                         if scope.get("query_string") else "")
        return _html(render("login.html", **self.pages.common(
            request, target=_safe_target(target), failed=given is not None)), 401)


def _host_name(host: str) -> str:
    """The name in a Host header, without its port or IPv6 brackets."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def create_app(open_source: Callable[[], Source], config: WebConfig | None = None
               ) -> tuple[Starlette, Pages]:
    """The ASGI app, and its pages object (set `pages.stopping` to end live tails)."""
    config = config or WebConfig()
    pool = Pool(open_source)
    pages = Pages(pool, config)
    static = StaticFiles(packages=[("netconsole.web", "static")])
    app = Starlette(routes=[
        Route("/", pages.fleet),
        Route("/host", pages.host),
        Route("/host/records", pages.host_records),
        Route("/incidents", pages.incidents),
        Route("/incident/{incident_id:int}", pages.incident),
        Route("/live", pages.live),
        Route("/live/events", pages.live_events),
        Route("/search", pages.search),
        Route("/login", pages.login, methods=["GET", "POST"]),
        Mount("/static", app=static, name="static"),
    ])
    app.add_middleware(Guard, config=config, pages=pages)
    app.state.pool = pool
    return app, pages


__all__ = [
    "CSP",
    "TOKEN_ENV",
    "ClickHouseSource",
    "Pool",
    "SQLiteSource",
    "Source",
    "WebConfig",
    "WebReader",
    "clickhouse_source",
    "create_app",
    "source_for",
    "sqlite_source",
]
