"""The app factory: builds the store, the model router and the services, and wires routes.

Nothing is global: each `create_app` call builds its own objects, so tests build their own
app with their own store.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from chatkeep.backends.config_file import load_config, project_policies
from chatkeep.backends.routing import build_router
from chatkeep.config import Settings, process_environment
from chatkeep.errors import ChatkeepError
from chatkeep.http.create_route import CreateRoute
from chatkeep.http.middleware import RequestIdMiddleware
from chatkeep.http.paths import RawPathRouting
from chatkeep.http.responses import handle_chatkeep_error, handle_http_exception
from chatkeep.http.routes import ROUTES
from chatkeep.http.state import AppState
from chatkeep.ids import CompletionIdGenerator
from chatkeep.lifecycle.book import PolicyBook
from chatkeep.lifecycle.retention import Retention, running_every
from chatkeep.log_writer import LineLog
from chatkeep.observability.metrics import Metrics
from chatkeep.observability.tracing import Tracing
from chatkeep.observability.tracing_middleware import TracingMiddleware
from chatkeep.responses.service import ResponseService
from chatkeep.service.access import Authenticator
from chatkeep.service.completions import CompletionCreator, ModelRouter
from chatkeep.service.key_access import KeyAccess
from chatkeep.service.reads import StoredCompletions
from chatkeep.store.base import CompletionStore
from chatkeep.store.factory import key_store_for, open_store, response_store_for
from chatkeep.store.keys import KeyStore
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.projects import project_settings_for
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.usage import usage_store_for
from chatkeep.ui import build_services as build_ui_services
from chatkeep.ui import ui_routes
from chatkeep.usage.meter import UsageMeter
from chatkeep.usage.prices import PriceBook
from chatkeep.usage.report import UsageReports

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    store: CompletionStore | None = None,
    router: ModelRouter | None = None,
    authenticator: Authenticator | None = None,
    key_store: KeyStore | None = None,
    metrics: Metrics | None = None,
    tracing: Tracing | None = None,
    lines: LineLog | None = None,
) -> Starlette:
    """Build the ASGI app. The store is opened and closed by the app's lifespan.

    Unless an `authenticator` is given, callers need API keys from the store's database
    (or `key_store`), and only a loopback server without keys runs open (docs/keys.md).
    `metrics` defaults to this process's own; `tracing` to what the `OTEL_*` variables
    ask for (none unless they do: docs/observability.md); `lines` writes the per-request
    INFO lines (`chatkeep serve` gives its `LineWriter`'s; default: through `logging`).
    """
    lines = lines or LineLog()
    if metrics is None:
        metrics = Metrics(project_label=settings.metrics_project_label)
    if tracing is None:
        tracing = Tracing.from_environment(process_environment())
    store = store if store is not None else open_store(settings)
    _watch_commits(store, metrics)
    router = router if router is not None else build_router(settings, metrics=metrics)
    if authenticator is None:
        keys = key_store if key_store is not None else key_store_for(store)
        authenticator = KeyAccess.for_settings(settings, keys)
    ids = CompletionIdGenerator()
    declared = {}
    prices = PriceBook()
    if settings.config is not None:
        config = load_config(settings.config)
        declared = project_policies(config, settings.config)
        prices = PriceBook(config.prices)
    usage_store = usage_store_for(store)
    meter = UsageMeter(
        usage_store,
        flush_seconds=settings.usage_flush_seconds,
        retention_days=settings.usage_retention_days,
    )
    policies = PolicyBook(project_settings_for(store), declared, ttl=settings.auth_cache_seconds)
    responses = response_store_for(store)
    state = AppState(
        settings=settings,
        store=store,
        router=router,
        authenticator=authenticator,
        creator=CompletionCreator(store, router, ids, meter, lines),
        stored=StoredCompletions(store),
        policies=policies,
        retention=Retention(store, policies, responses=responses, metrics=metrics),
        usage=UsageReports(usage_store, meter, prices),
        responses=ResponseService(responses, router, ids, meter=meter, lines=lines),
        metrics=metrics,
        tracing=tracing,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.store.open()
        await state.policies.load()
        await state.authenticator.start()
        await state.router.start()
        await meter.start()
        if state.tracing is not None:
            state.tracing.start()
        try:
            async with running_every(state.retention, settings.purge_interval_seconds):
                yield
        finally:
            await state.router.aclose()
            await meter.aclose()  # after the last completion, before the store closes
            await state.authenticator.aclose()
            await state.store.close()
            if state.tracing is not None:
                state.tracing.close()

    ui = build_ui_services(
        settings,
        stored=state.stored,
        store=store,
        usage=state.usage,
        authenticator=authenticator,
    )
    app = Starlette(
        routes=[*ROUTES, *ui_routes(ui)],
        # The create route runs inside the request-id middleware, ahead of Starlette's router.
        middleware=[
            Middleware(
                RequestIdMiddleware,
                ids=ids,
                access_log=settings.access_log,
                metrics=metrics,
                lines=lines,
            ),
            # Only in the stack when tracing is on: off, it costs nothing.
            *([Middleware(TracingMiddleware, tracing=tracing)] if tracing is not None else []),
            Middleware(RawPathRouting),
            Middleware(CreateRoute),
        ],
        exception_handlers={
            ChatkeepError: handle_chatkeep_error,
            HTTPException: handle_http_exception,
        },
        lifespan=lifespan,
    )
    # An API answers the path it was sent, never a redirect to another (docs: README).
    app.router.redirect_slashes = False
    app.state.chatkeep = state
    return app


def _watch_commits(store: CompletionStore, metrics: Metrics) -> None:
    """Have the store's writer report each commit to the metrics (a store of a test's own
    making may have no writer to watch)."""
    if isinstance(store, SQLiteStore):
        store.observe_commit = metrics.commit_observer("sqlite")
    elif isinstance(store, PostgresStore):
        store.observe_commit = metrics.commit_observer("postgres")
