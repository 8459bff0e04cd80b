"""Everything a request handler needs, built once per app and kept on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from chatkeep.config import Settings
from chatkeep.lifecycle.book import PolicyBook
from chatkeep.lifecycle.retention import Retention
from chatkeep.observability.metrics import Metrics
from chatkeep.observability.tracing import Tracing
from chatkeep.responses.service import ResponseService
from chatkeep.service.access import Authenticator
from chatkeep.service.completions import CompletionCreator, ModelRouter
from chatkeep.service.reads import StoredCompletions
from chatkeep.store.base import CompletionStore
from chatkeep.usage.report import UsageReports


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    store: CompletionStore
    router: ModelRouter
    authenticator: Authenticator
    creator: CompletionCreator
    stored: StoredCompletions
    policies: PolicyBook
    retention: Retention
    usage: UsageReports
    responses: ResponseService
    metrics: Metrics
    # None unless the `OTEL_*` variables turn tracing on (decided once, at start).
    tracing: Tracing | None = None
