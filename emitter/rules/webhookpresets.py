"""The webhook `auth.preset` table: how each sender authenticates and names its deliveries,
checked against the sender's own documentation (the page is cited beside each entry).

A preset fills the fields of one authentication scheme and, where the sender gives every
delivery a unique id that a redelivery keeps, the default `dedup` key. A rule's own `auth`
keys override a preset's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class Preset(NamedTuple):
    fields: Mapping[str, Any]  # `auth` keys, as a rule would write them
    dedup_header: str | None = None  # the sender's delivery id header, kept on redelivery
    dedup_key: str | None = None  # else a template for the delivery id, or None
    # `signed` when the rule adds a `timestamp_header` (Grafana signs "ts:body" then)
    signed_with_timestamp: str | None = None


PRESETS: Mapping[str, Preset] = {
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    # X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>; each delivery carries a
    # GUID in X-GitHub-Delivery, and "Redeliver" resends it with the same GUID.
    "github": Preset(
        {"scheme": "hmac", "header": "X-Hub-Signature-256", "algorithm": "sha256",
         "encoding": "hex", "prefix": "sha256="},
        dedup_header="X-GitHub-Delivery"),
    # https://docs.gitlab.com/ee/user/project/integrations/webhooks.html
    # The secret token is sent in clear in X-Gitlab-Token; X-Gitlab-Event-UUID names the
    # event (a retried or resent delivery of the same event keeps it).
    "gitlab": Preset(
        {"scheme": "header", "header": "X-Gitlab-Token"},
        dedup_header="X-Gitlab-Event-UUID"),
    # https://api.slack.com/authentication/verifying-requests-from-slack
    # X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">, the timestamp in
    # X-Slack-Request-Timestamp; Slack asks to refuse requests more than 5 minutes old.
    "slack": Preset(
        {"scheme": "hmac", "header": "X-Slack-Signature", "algorithm": "sha256",
         "encoding": "hex", "prefix": "v0=", "signed": "v0:{timestamp}:{body}",
         "timestamp_header": "X-Slack-Request-Timestamp", "tolerance": 300}),
    # https://prometheus.io/docs/alerting/latest/configuration/#http_config
    # Alertmanager cannot sign: its webhook_config http_config sends `authorization`
    # (Authorization: Bearer <credentials>) or `basic_auth`. A group is re-sent every
    # repeat_interval on purpose, so no delivery id: the rule's aggregation key groups them.
    "alertmanager": Preset({"scheme": "bearer"}),
    # https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/
    # HMAC Signature: hex HMAC-SHA256 in X-Grafana-Alerting-Signature (the default header);
    # with a timestamp header configured, the signed text is "<timestamp>:<body>".
    "grafana": Preset(
        {"scheme": "hmac", "header": "X-Grafana-Alerting-Signature", "algorithm": "sha256",
         "encoding": "hex"},
        signed_with_timestamp="{timestamp}:{body}"),
    # https://docs.sentry.io/integrations/integration-platform/webhooks/
    # Sentry-Hook-Signature: hex HMAC-SHA256 of the body, keyed with the integration's
    # client secret; Request-ID identifies the request.
    "sentry": Preset(
        {"scheme": "hmac", "header": "Sentry-Hook-Signature", "algorithm": "sha256",
         "encoding": "hex"},
        dedup_header="Request-ID"),
    # https://developer.pagerduty.com/docs/webhooks/webhook-signatures/
    # X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>, several comma-separated
    # while a secret rotates; every V3 payload's event has a unique `event.id`.
    "pagerduty": Preset(
        {"scheme": "hmac", "header": "X-PagerDuty-Signature", "algorithm": "sha256",
         "encoding": "hex", "prefix": "v1=", "separator": ","},
        dedup_key="{{ payload.event.id }}"),
}
