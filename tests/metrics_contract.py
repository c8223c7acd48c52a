"""The metrics hlrd exposes, by name and labels: what deploy/ may query.

The dashboard and the Prometheus rules are checked against this list, so a panel
cannot ask for a metric or label the daemon does not have. Histograms are listed
under their base name; their `_bucket`, `_sum` and `_count` series are derived.
"""

from __future__ import annotations

HISTOGRAMS: dict[str, frozenset[str]] = {
    "hlrd_lookup_duration_seconds": frozenset({"provider", "outcome"}),
    "hlrd_http_request_duration_seconds": frozenset({"route"}),
}

SERIES: dict[str, frozenset[str]] = {
    "hlrd_lookups_total": frozenset({"provider", "outcome"}),
    "hlrd_upstream_attempts_total": frozenset({"provider", "outcome"}),
    "hlrd_lookup_failovers_total": frozenset({"provider"}),
    "hlrd_upstream_binds": frozenset({"provider", "state"}),
    "hlrd_upstream_circuit_state": frozenset({"provider"}),
    "hlrd_upstream_circuit_opened_total": frozenset({"provider"}),
    "hlrd_upstream_binds_configured": frozenset({"provider"}),
    "hlrd_upstream_window_in_flight": frozenset({"provider"}),
    "hlrd_upstream_queued": frozenset({"provider"}),
    "hlrd_upstream_queue_limit": frozenset({"provider"}),
    "hlrd_upstream_rate_tps": frozenset({"provider"}),
    "hlrd_upstream_throttled_total": frozenset({"provider"}),
    "hlrd_upstream_retries_total": frozenset({"provider"}),
    "hlrd_upstream_receipts_discarded_total": frozenset({"provider", "reason"}),
    "hlrd_decisions_total": frozenset({"verdict", "reason"}),
    "hlrd_list_numbers": frozenset({"list"}),
    "hlrd_list_age_seconds": frozenset({"list"}),
    "hlrd_list_stale": frozenset({"list"}),
    "hlrd_list_hits_total": frozenset({"list"}),
    "hlrd_list_reload_failures_total": frozenset(),
    "hlrd_erasures_total": frozenset({"source"}),
    "hlrd_deferrals_total": frozenset({"country"}),
    "hlrd_consent_records": frozenset(),
    "hlrd_audit_records_total": frozenset(),
    "hlrd_audit_pending": frozenset(),
    "hlrd_audit_write_failures_total": frozenset(),
    "hlrd_audit_refused_total": frozenset(),
    "hlrd_rejected_numbers_total": frozenset({"problem"}),
    "hlrd_client_connections": frozenset({"frontend"}),
    "hlrd_client_connections_refused_total": frozenset({"frontend", "reason"}),
    "hlrd_client_connections_closed_total": frozenset({"frontend", "reason"}),
    "hlrd_http_requests_total": frozenset({"route", "method", "code"}),
    "hlrd_build_info": frozenset({"version", "python"}),
    "hlrd_cache_lookups_total": frozenset({"result"}),
    "hlrd_cost_spent_total": frozenset({"provider", "currency"}),
    "hlrd_cost_saved_total": frozenset({"provider", "currency"}),
    "hlrd_smpp_server_binds": frozenset({"account"}),
    "hlrd_smpp_server_submits_total": frozenset({"account"}),
    "hlrd_smpp_server_receipts_total": frozenset({"account", "event"}),
    "hlrd_smpp_server_receipts_pending": frozenset({"account"}),
    "hlrd_smpp_server_throttled_total": frozenset({"account"}),
    "hlrd_smpp_server_rejected_total": frozenset({"account", "status"}),
    "hlrd_smpp_server_bind_failures_total": frozenset({"account", "reason"}),
    "hlrd_smpp_server_bind_lockouts_total": frozenset(),
    "process_resident_memory_bytes": frozenset(),
    "process_cpu_seconds_total": frozenset(),
    "process_open_fds": frozenset(),
    "process_max_fds": frozenset(),
    "python_gc_objects_collected_total": frozenset({"generation"}),
    "python_gc_objects_uncollectable_total": frozenset({"generation"}),
    "python_gc_collections_total": frozenset({"generation"}),
    # Prometheus' own series for each target.
    "up": frozenset(),
}

# Labels Prometheus adds to every series it scrapes.
TARGET_LABELS = frozenset({"job", "instance"})


def metric_labels() -> dict[str, frozenset[str]]:
    """Every series name a query may select, with the labels it carries."""
    names = dict(SERIES)
    for base, labels in HISTOGRAMS.items():
        names[f"{base}_bucket"] = labels | {"le"}
        names[f"{base}_sum"] = labels
        names[f"{base}_count"] = labels
    return {name: labels | TARGET_LABELS for name, labels in names.items()}
