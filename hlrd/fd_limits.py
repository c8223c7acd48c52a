"""The process's descriptor budget: raise the soft limit, then fit client caps in it.

Clients must run out of slots before the process runs out of descriptors: when 1,100
idle HTTP connections met a limit of 1,024, accept() failed in a loop and upstream
binds could not reconnect. So the soft limit goes up to the hard one (systemd and
Docker often start at 1,024 soft with a far higher hard limit), and the caps on
client connections of all front ends together are kept `limits.fd_reserve` below
it, for upstream binds, listeners, logs and the store.
"""

from __future__ import annotations

import contextlib
import resource
from dataclasses import dataclass

import structlog

log = structlog.get_logger("hlrd")

# Linux's default fs.nr_open: the highest soft limit to ask for when the hard one is
# "unlimited" (RLIMIT_NOFILE cannot be set to infinity there).
_UNLIMITED_TARGET = 1_048_576


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        # On failure keep what we have: the caps are fitted to whatever is in force.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    log.info("hlrd.fd_limit", soft=_shown(soft), hard=_shown(hard))
    return soft


def _shown(limit: int) -> int | str:
    return "unlimited" if limit == resource.RLIM_INFINITY else limit


@dataclass(frozen=True, slots=True)
class ConnectionCaps:
    http: int
    smpp: int  # 0 when the SMPP front end is off


def fit_connection_caps(http: int, smpp: int, soft_limit: int, reserve: int) -> ConnectionCaps:
    """Scale the configured caps down, in proportion, to fit `soft_limit - reserve`.

    Each front end keeps at least one connection, even when the budget is smaller
    than that (a misconfiguration the warning names).
    """
    wanted = ConnectionCaps(http, smpp)
    if soft_limit == resource.RLIM_INFINITY:
        return wanted
    budget = soft_limit - reserve
    if http + smpp <= budget:
        return wanted
    fitted_http = max(1, http * budget // (http + smpp))
    fitted_smpp = max(1, budget - fitted_http) if smpp else 0
    fitted = ConnectionCaps(fitted_http, fitted_smpp)
    log.warning(
        "hlrd.connection_caps_clamped",
        fd_soft_limit=soft_limit,
        fd_reserve=reserve,
        http_max_connections=fitted.http,
        http_configured=http,
        smpp_max_connections=fitted.smpp,
        smpp_configured=smpp,
    )
    return fitted
