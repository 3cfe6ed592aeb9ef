"""What `/healthz` says: ok, or failing with each failing part and its last error.

A part fails when its guarded thread crashed recently (trigger runners: TriggerHealth.failing),
when the sender reports itself unhealthy, when a listener's thread has ended, or when the
shared backend's database cannot be reached (`database` says so either way on that backend).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from emitter.delivery.sender import Sender
from emitter.triggers.base import TriggerRunner


def health_report(units: Iterable[tuple[str, TriggerRunner]], sender: Sender | None,
                  dead_listeners: Sequence[str] = (), *, shared: bool = False,
                  database: str | None = None, starting: bool = False) -> dict[str, Any]:
    """{"status": "ok" | "starting" | "failing", "failing": [{"part", "error"}...],
    "firings": n}, plus "database": "reachable" | "unreachable" on the `shared` backend,
    where `database` is None or why the database cannot be reached."""
    failing: list[dict[str, Any]] = []
    firings = 0
    for name, runner in units:
        health = runner.health()
        firings += health.firings
        if health.failing:
            failing.append({"part": f"trigger {name}", "error": health.last_error})
    problem = _sender_problem(sender)
    if problem is not None:
        failing.append({"part": "sender", "error": problem})
    failing += [{"part": f"listener {addr}", "error": "stopped serving"} for addr in dead_listeners]
    if database is not None:
        failing.append({"part": "database", "error": database})
    # Until every trigger has started the ports answer, but a probe must not send traffic
    # yet (a file trigger taking its start position would miss lines written meanwhile).
    status = "failing" if failing else "starting" if starting else "ok"
    report = {"status": status, "failing": failing, "firings": firings}
    if shared:
        report["database"] = "unreachable" if database is not None else "reachable"
    return report


def _sender_problem(sender: Sender | None) -> str | None:
    """The sender's own verdict (emitter.delivery.guard.SenderHealth)."""
    if sender is None:
        return None
    state = sender.health()
    if state.ok:
        return None
    parts = ", ".join(state.failing) or "a thread stopped"
    return f"{parts}: {state.last_error or 'failing'}"
