"""The ASGI app: ``POST /loader``, the read API, live events and the dashboard files."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from string import Template
from typing import Annotated, Any

from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse as _JSONResponse
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from .. import __version__, protocol
from . import api_schema, junit
from .config import ServeConfig
from .guard import Guard
from .ingest import MAX_IDENTITY_CHARS, MAX_SHORT_CHARS, clean_text, cut_text
from .jsonsafe import dumps_safe
from .junit import StillRunning
from .lifecycle import Lifecycle
from .loader import Loader, LoaderFastPath
from .notify import Listener
from .sse import Hub
from .store import MAX_TESTS_PAGE, TESTS_PAGE, Store

STATIC_DIR = Path(__file__).parent / "static"
NO_CACHE = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
HTML_HEADERS = NO_CACHE | {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
}
JobStatus = api_schema.JobStatus


class JSONResponse(_JSONResponse):
    """Starlette's JSON answer, except that no stored value can make it fail: a value too
    deep for the encoder (stored before the ingest limits) is cut with a marker."""

    def render(self, content: Any) -> bytes:
        return dumps_safe(content)


class _StaticFiles(StaticFiles):
    """The dashboard's files, revalidated on every load (a new version shows at once)."""

    async def check_config(self) -> None:
        # Without its files (the dashboard not installed) answer 404, not 500.
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(NO_CACHE)
        return response


def create_app(
    config: ServeConfig, store: Store | None = None, static_dir: Path = STATIC_DIR
) -> FastAPI:
    """The receiver app. It owns (and closes) its store unless one is passed in."""
    owned = store is None
    the_store = store if store is not None else Store(config.db_url)
    hub = Hub()
    lifecycle = Lifecycle(the_store, hub, config)  # abandons silent jobs, deletes old ones
    # On a shared PostgreSQL, the dashboards hear every receiver's writes (notify.py).
    channel = the_store.channel
    listener = Listener(the_store, hub, channel) if channel is not None else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        lifecycle.start()
        if listener is not None:
            listener.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            await lifecycle.stop()
            if listener is not None:
                await run_in_threadpool(listener.stop)
            hub.close()
            if owned:
                the_store.close()

    app = FastAPI(
        title="pytest-rt receiver",
        summary="Receives pytest-rt events and serves the live dashboard.",
        version=__version__,
        lifespan=lifespan,
        # FastAPI's viewers load their scripts from a CDN: the dashboard promises to
        # work offline, and /openapi.json (linked from the README) is the description.
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = the_store
    app.state.hub = hub
    app.state.listener = listener
    app.state.config = config

    @app.exception_handler(RequestValidationError)
    async def bad_query(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
            for err in exc.errors()
        )
        return JSONResponse({"error": problems}, status_code=422)

    _ingest_routes(app, config, the_store, hub)
    _read_routes(app, the_store, hub)
    lifecycle.add_routes(app)
    _page_routes(app, static_dir)
    app.add_middleware(Guard, config=config)  # added last: the outermost layer
    return app


def _ingest_routes(app: FastAPI, config: ServeConfig, store: Store, hub: Hub) -> None:
    loader = Loader(config, store, hub)
    app.state.check_token = loader._check_token  # DELETE /api/jobs/{id} asks the same
    # POST /loader is routed once, here: the hot path skips FastAPI (loader.py).
    app.add_middleware(LoaderFastPath, loader=loader)
    _describe_loader(app)


def _describe_loader(app: FastAPI) -> None:
    """POST /loader in /openapi.json, its body described by the event models.

    The route is built for the description only and never added to the router:
    LoaderFastPath answers every POST /loader before routing.
    """

    async def loader_route(
        events: Annotated[api_schema.IngestBody, Body(
            description="One event (docs/protocol.md) or an array of events (all-or-nothing)."
        )],
    ) -> api_schema.IngestAnswer:
        raise NotImplementedError  # never routed: LoaderFastPath answers

    route = APIRoute(
        "/loader",
        loader_route,
        methods=["POST"],
        summary="Receive one event or a batch of events",
        response_model=api_schema.IngestAnswer,
        responses=api_schema.INGEST_ERRORS,
    )
    described = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = described()
            loader_part = get_openapi(title=app.title, version=app.version, routes=[route])
            schema["paths"] = {**loader_part["paths"], **schema["paths"]}
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(loader_part.get("components", {}).get("schemas", {}))
        return app.openapi_schema or described()

    app.openapi = openapi  # type: ignore[method-assign]


def _read_routes(app: FastAPI, store: Store, hub: Hub) -> None:
    @app.get("/api/jobs", response_model=api_schema.JobList, summary="Jobs, running first")
    async def list_jobs(
        status: JobStatus | None = None,
        env: str | None = None,
        limit: int = Query(50, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=2**31),
        project: str | None = Query(None, max_length=10_000),
        branch: str | None = Query(None, max_length=10_000),
    ) -> Response:
        # Cut as ingest cuts it: a job filed under a very long env is found by it.
        env = cut_text(clean_text(env), MAX_SHORT_CHARS, newline=False) if env else env
        project, branch = _identity(project), _identity(branch)
        page = await run_in_threadpool(
            store.jobs_page, status, env, limit, offset, project, branch
        )
        return JSONResponse(page)

    # Before the job route, whose {job_id:path} would take ".../junit.xml" as an id.
    @app.get(
        "/api/jobs/{job_id:path}/junit.xml",
        summary="A finished job as JUnit XML (its CI shards merged into one file)",
        response_class=Response,
        responses={
            200: {"content": {"application/xml": {}}},
            404: {"model": api_schema.ErrorAnswer},
            409: {"model": api_schema.ErrorAnswer, "description": "The job is still running"},
        },
    )
    async def job_junit(job_id: str) -> Response:
        try:
            xml = await run_in_threadpool(_junit, store, clean_text(job_id))
        except StillRunning:
            return JSONResponse(
                {"error": "the job is still running: its JUnit XML is there once it ends"},
                status_code=409,
            )
        if xml is None:
            return JSONResponse({"error": f"no job {job_id!r}"}, status_code=404)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", job_id)[:80]
        return Response(xml, media_type="application/xml", headers={
            "Content-Disposition": f'attachment; filename="pytest-rt-{name}.xml"',
        })

    @app.get(
        "/api/jobs/{job_id:path}",
        response_model=api_schema.JobDetail,
        responses={404: {"model": api_schema.ErrorAnswer}},
        summary="One job and its tests",
    )
    async def get_job(
        job_id: str,
        offset: int = Query(0, ge=0, le=2**31),
        limit: int = Query(TESTS_PAGE, ge=1, le=MAX_TESTS_PAGE),
        status: api_schema.TestStatus | None = None,
        change: api_schema.Change | None = None,
    ) -> Response:
        detail = await run_in_threadpool(
            store.job_detail, job_id, offset, limit, status, change
        )
        if detail is None:
            return JSONResponse({"error": f"no job {job_id!r}"}, status_code=404)
        return JSONResponse(detail)

    @app.get(
        "/api/tests/history",
        response_model=api_schema.History,
        summary="One test's results across jobs, newest first",
    )
    async def test_history(
        nodeid: str = Query(..., max_length=100_000),
        limit: int = Query(50, ge=1, le=1000),
        project: str | None = Query(None, max_length=10_000),
        branch: str | None = Query(None, max_length=10_000),
    ) -> Response:
        project, branch = _identity(project), _identity(branch)
        return JSONResponse(
            await run_in_threadpool(store.history, nodeid, limit, project, branch)
        )

    @app.get(
        "/api/events",
        summary="Live changes (text/event-stream); ?job=ID for one job",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def events(job: str | None = None) -> StreamingResponse:
        return StreamingResponse(
            hub.stream(clean_text(job) if job is not None else None),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/healthz", response_model=api_schema.Health, summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}


def _identity(value: str | None) -> str | None:
    """A project or branch filter, cut as ingest cuts it (so a long one is found)."""
    if not value:
        return None
    return cut_text(clean_text(value), MAX_IDENTITY_CHARS, newline=False)


def _junit(store: Store, job_id: str) -> bytes | None:
    with store.engine.connect() as conn:
        return junit.export(conn, job_id)


# Each page: its own part (a file of the static directory), its title, its script, and
# the way back to the root from its URL. Every page is that part inside one shell.
PAGES = {
    "jobs": ("index.html", "Jobs", "jobs.js", "./"),
    "job": ("job.html", "Job", "job.js", "../"),
    "test": ("test.html", "Test history", "test.js", "./"),
}
SHELL = "page.html"  # in the static directory served, else the package's


def _page_routes(app: FastAPI, static_dir: Path) -> None:
    words = protocol.vocabulary()
    # The shell carries the protocol's words for the dashboard's scripts (in a <meta>:
    # the pages run no script but their own).
    words_in_page = html.escape(dumps_safe(words).decode(), quote=True)

    def page(name: str) -> Response:
        part, title, script, root = PAGES[name]
        path = static_dir / part
        shell = static_dir / SHELL
        if not shell.is_file():
            shell = STATIC_DIR / SHELL
        if not path.is_file() or not shell.is_file():
            return JSONResponse({"error": f"{part} is not installed"}, status_code=404)
        text = Template(shell.read_text("utf-8")).substitute(
            # `up` leads from the page's URL to the root's files: "static/..." as the
            # pages always wrote them ("./static/..." would do, but is another URL text).
            title=title, root=root, up="" if root == "./" else root, script=script,
            protocol=words_in_page,
            jobs_current=' aria-current="page"' if name == "jobs" else "",
            body=path.read_text("utf-8"),
        )
        return Response(text, media_type="text/html", headers=HTML_HEADERS)

    # Plain functions: FastAPI runs them on its thread pool, where reading files is fine.
    @app.get("/", include_in_schema=False)
    def jobs_page() -> Response:
        return page("jobs")

    @app.get("/jobs/{job_id:path}", include_in_schema=False)
    def job_page(job_id: str) -> Response:  # noqa: ARG001 - the route's path parameter
        return page("job")

    @app.get("/tests", include_in_schema=False)
    def test_page() -> Response:
        return page("test")

    @app.get("/protocol.json", include_in_schema=False)
    async def protocol_words() -> Response:
        """The protocol's words (pytest_rt.protocol.vocabulary()): event types, statuses,
        outcomes. The dashboard's pages carry the same document."""
        return JSONResponse(words, headers=NO_CACHE)

    app.mount("/static", _StaticFiles(directory=static_dir, check_dir=False), name="static")
