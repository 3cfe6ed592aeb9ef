"""How a run ends: at the end of --stdin input, what is pending gets `grace` seconds to be
delivered; on a stop, ports close and triggers stop (what they fired is durable), the sender
finishes requests in flight within `grace`, and events left undelivered are said, with where."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from emitter.daemon import logs
from emitter.daemon.front import Ports
from emitter.daemon.runstate import RunState
from emitter.daemon.unitset import Units
from emitter.delivery.sender import Sender

log = logging.getLogger(logs.LIFECYCLE)


def deliver_after_input(sender: Sender | None, state: RunState | None, grace: float) -> None:
    """`producer | emitter run --stdin` ended: deliver what is pending, for up to `grace`
    seconds; what is left is said at shutdown."""
    log.info("standard input ended and nothing else runs: delivering, then exiting",
             extra={"pending": state.left() if state else 0, "grace": grace})
    if sender is not None:
        sender.drain(grace)


def stop_run(ports: Ports, units: Units, sender: Sender | None, state: RunState | None, *,
             grace: float, flush: Callable[[], None], input_ended: bool) -> tuple[bool, int]:
    """Stop everything within `grace`: (every in-flight request finished, events left).
    The state stays open (the caller closes it)."""
    deadline = time.monotonic() + grace
    ports.close()  # no new requests: webhooks answered so far are durable
    units.stop_all(deadline)
    flush()
    finished = True
    if sender is not None:
        if state is not None and state.temporary:
            # A temporary outbox is deleted at close: what the triggers fired just before
            # the stop (--exit-after, Ctrl-C) is printed within the grace, not dropped.
            sender.drain(max(0.1, deadline - time.monotonic()))
        finished = sender.stop(max(0.1, deadline - time.monotonic()))
    pending = state.left() if state is not None else 0
    if input_ended and pending and state is not None:
        log.error("standard input ended: %d event(s) not delivered within --grace "
                  "%.0fs; %s", pending, grace, state.where_left(),
                  extra={"undelivered": pending, "state_dir": str(state.state_dir)})
    return finished, pending
