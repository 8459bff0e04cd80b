"""Before `chatkeep serve` listens: refuse to serve an open door beyond this machine.

A server on a loopback address may run open while the database holds no API key (the
quick start). On any other address that would hand every stored completion to anyone who
can reach it, so start-up stops, unless `--insecure-no-auth` says it is meant.
"""

from __future__ import annotations

import click

from chatkeep.cli.keys import on_key_store
from chatkeep.config import Settings
from chatkeep.service.access import is_loopback_host


def refuse_exposed_without_keys(settings: Settings) -> None:
    """Raise `click.ClickException` when a non-loopback server would start without keys."""
    if is_loopback_host(settings.host) or settings.insecure_no_auth:
        return
    if on_key_store(settings, lambda keys: keys.has_keys()):
        return
    raise click.ClickException(
        f"Refusing to serve on {settings.host} without API keys: anyone who can reach that "
        "address could read, change and delete every stored completion. Create a key first "
        "(`chatkeep keys create --project NAME`), listen on a loopback address "
        "(--host 127.0.0.1), or, if an open server is really meant, add --insecure-no-auth "
        "(CHATKEEP_INSECURE_NO_AUTH=true)."
    )
