"""Every limit on an event's fields and on the datagrams that carry it, in one table: the event
check, lint, throttle summaries and the sinks read them here (the event schema repeats the
field lengths for editors; tests/test_eventcheck.py proves the two agree)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Seed ('Envoyer un événement'): limits in characters (Unicode code points).
TITLE_MAX = 100
TEXT_MAX = 4000
AGGREGATION_KEY_MAX = 100
# The event fields with a length limit, as schemas/event.schema.json's maxLength states them.
FIELD_MAX: Mapping[str, int] = MappingProxyType(
    {"title": TITLE_MAX, "text": TEXT_MAX, "aggregation_key": AGGREGATION_KEY_MAX})

# Datadog keeps at most this many characters of a tag (longer ones are cut: a lint warning).
TAG_MAX = 200

# date_happened, in seconds. The seed's window is an error; today's API window is a warning.
SEED_MAX_AGE = 389 * 86400
API_MAX_AGE = 18 * 3600  # the API answers "Event too far in the past" beyond this
API_MAX_AHEAD = 2 * 3600
MILLISECONDS_FLOOR = 10**11  # seconds past this are in the year 5138: surely milliseconds

# The Datadog Agent's DogStatsD read buffer: a longer datagram would be cut or dropped.
DOGSTATSD_DATAGRAM_MAX = 8192
