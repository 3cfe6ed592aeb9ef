"""`emitter fire --deadline` bounds all attempts together, the one in flight included
(issue 8 defect 5: against an intake answering after 8 s, `--deadline 2` exited 0 after 8 s)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from emitter.delivery.outbox import Outbox
from emitter.errors import EXIT_DELIVERY
from tests.intake import INTAKE_KEY, FakeIntake, Fault, intake_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = str(ROOT / "rules" / "deploy.yaml")
DEPLOY_VARS = ["--var", "service=payments", "--var", "version=1.4.2", "--var", "outcome=success"]


def _fire(intake: FakeIntake, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DD_API_KEY": INTAKE_KEY, "DATADOG_HOST": intake.url}
    env.pop("EMITTER_STATE_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "emitter", "fire", DEPLOY, "--rule", "deploy-finished",
         *DEPLOY_VARS, "--deadline", "2", *extra],
        capture_output=True, text=True, env=env, cwd=ROOT,
        timeout=20,  # a hang guard only, not a timing assertion
    )


def test_deadline_cuts_the_attempt_in_flight(intake: FakeIntake) -> None:
    intake.set_mode(Fault.slow(8))
    done = _fire(intake)
    assert done.returncode == EXIT_DELIVERY, (done.returncode, done.stderr)
    assert "no answer within 2s" in done.stderr
    assert "Traceback" not in done.stderr


def test_deadline_with_the_outbox_leaves_the_event_queued(intake: FakeIntake,
                                                          tmp_path: Path) -> None:
    intake.set_mode(Fault.slow(8))
    done = _fire(intake, "--state-dir", str(tmp_path))
    assert done.returncode == EXIT_DELIVERY, (done.returncode, done.stderr)
    assert "left in the outbox" in done.stderr
    with Outbox.in_dir(tmp_path) as outbox:
        (row,) = outbox.list_events()
        assert row.state == "pending"
