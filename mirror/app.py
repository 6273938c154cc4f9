"""The ASGI application."""

from __future__ import annotations

import threading
from datetime import timedelta
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from mirror import __version__
from mirror.audit import api as audit_api
from mirror.audit.process import run_audit_process
from mirror.audit.runner import audit_scheduler
from mirror.config import Settings, load_settings
from mirror.container import Services
from mirror.memory import settle_after_start
from mirror.metrics import MetricsMiddleware, metrics_endpoint
from mirror.review import api as review_api, views as review_views
from mirror.review.auth import ClientAuthMiddleware
from mirror.review.refusals import RefusalRecorder
from mirror.review.settings import ReviewSettings
from mirror.serving.page_process import PageProcess
from mirror.web import api_docs, files, health, json_api, limits, simple, upload, why
from mirror.web.accesslog import JsonAccessLog
from mirror.web.warm import WarmPages
from mirror.web.bulkhead import Bulkhead
from mirror.web.errors import install_error_handlers

def create_app(settings: Settings, *, services: Services | None = None, server_process: bool = False) -> FastAPI:
    """The ASGI app; ``server_process``: the only app of a server process (``serve``), which settles its memory."""
    services = services or Services(settings)
    if server_process and settings.server.page_process:
        services.projects.use_builder(PageProcess(
            settings, idle_seconds=settings.server.page_process_idle, timeout=settings.server.page_process_timeout,
            start_timeout=settings.server.page_process_start_timeout,
        ))
    review_settings = ReviewSettings.from_settings(settings)
    # Who was refused a blocked project ("clients that asked"), counted in memory and written in batches.
    refusals = RefusalRecorder(
        services.sessions, services.clock, retention=timedelta(days=review_settings.refusals_retention_days),
        max_pending=review_settings.refusals_max_waiting, max_clients=review_settings.refusals_max_clients,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.store.cleanup_stale_temps()
        services.projects.builder.start()  # the page process pays its start-up now, not on the first page
        # Load the detectors' corpus now, off the request path, not on the first screening.
        threading.Thread(target=_load_corpus, args=(services, server_process), name="corpus-load", daemon=True).start()
        # Re-audit once per interval across replicas; a server process audits in a child of its own.
        run = (lambda holder: run_audit_process(settings, holder)) if server_process else None
        scheduler = audit_scheduler(services, run=run)
        app.state.audit_scheduler = scheduler
        scheduler.start()
        refusals.start()
        try:
            yield
        finally:
            scheduler.stop()
            refusals.stop()
            services.close()

    app = FastAPI(
        title="IndexGuard",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # mirror.web.api_docs: no CDN
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.services = services
    app.state.review_settings = review_settings
    app.state.refusals = refusals
    app.state.upstream_room = Bulkhead(settings.server.upstream_workers, settings.server.upstream_queue)
    install_error_handlers(app, on_refused=refusals)
    app.include_router(simple.router)
    app.include_router(json_api.router)
    app.include_router(why.router)
    app.include_router(api_docs.router)
    app.include_router(files.router)
    app.include_router(health.router)
    app.include_router(upload.router)
    app.include_router(review_api.router)
    app.include_router(review_views.router)
    app.include_router(audit_api.router)
    app.add_api_route(
        "/metrics", metrics_endpoint(services.sessions, services.clock), methods=["GET"], include_in_schema=False
    )
    app.add_middleware(WarmPages, projects=services.projects)  # innermost: after auth and limits
    app.add_middleware(
        ClientAuthMiddleware, required=review_settings.require_client_auth
    )
    app.add_middleware(limits.RequestLimits, server=settings.server)  # credential and body caps before any body
    app.add_middleware(MetricsMiddleware)
    if settings.server.access_log == "json":
        app.add_middleware(JsonAccessLog)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings come from ``$INDEXGUARD_CONFIG``."""
    return create_app(load_settings(), server_process=True)


def _load_corpus(services: Services, server_process: bool) -> None:
    services.detectors.corpus()
    if server_process:
        settle_after_start()
