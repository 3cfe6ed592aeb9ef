"""The environment a child process gets (command triggers, `emitter exec`): emitter's own
environment without its credentials, unless the rule asks for a variable by name.

Removed: every variable a rule names as a webhook secret, and every name that
`redaction.is_credential_name` calls a credential (the Datadog keys, names ending in `_KEY`,
`_TOKEN` or `_SECRET`, or holding `PASSWORD`/`PASSWD`): the same rule the messages use.
A name in `keep` (a rule's `env:` list) is passed on even so. systemd's NOTIFY_SOCKET and
WATCHDOG_* (`SERVICE_MANAGER`) never are.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from emitter.redaction import is_credential_name, webhook_secret_envs
from emitter.rules.model import Rule

# systemd's notify socket and watchdog are emitter's: a child talking to them would speak for it.
SERVICE_MANAGER = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})


def secret_names(rules: Iterable[Rule]) -> frozenset[str]:
    """Every environment variable the rules name as a webhook secret."""
    return webhook_secret_envs(rules)


def child_environ(environ: Mapping[str, str], *, keep: Collection[str] = (),
                  secrets: Collection[str] = ()) -> dict[str, str]:
    """`environ` without credentials (see the module doc); names in `keep` stay."""
    return {name: value for name, value in environ.items()
            if name not in SERVICE_MANAGER and (
                name in keep or not (name in secrets or is_credential_name(name)))}
