"""Settings from the environment; the API key never shows."""

from __future__ import annotations

import logging
import pickle

import pytest

from emitter.errors import ConfigError
from emitter.settings import SITES, Secret, Settings, unified_tags

KEY = "sEcReT-kEy-5f1e2d3c4b5a69788796a5b4c3d2e1f0"


def test_defaults() -> None:
    s = Settings.from_environ({})
    assert s.api_key is None
    assert s.site == "datadoghq.com"
    assert s.base_url == "https://api.datadoghq.com"
    assert s.events_url == "https://api.datadoghq.com/api/v1/events"
    assert s.unified_tags == ()
    assert s.hostname


@pytest.mark.parametrize("site", SITES)
def test_every_site_maps_to_api_host(site: str) -> None:
    assert Settings.from_environ({"DD_SITE": site}).base_url == f"https://api.{site}"


def test_site_is_case_and_space_insensitive() -> None:
    assert Settings.from_environ({"DD_SITE": " DatadogHQ.EU "}).site == "datadoghq.eu"


def test_unknown_site_lists_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_environ({"DD_SITE": "datadoghq.io"})
    message = str(info.value)
    assert "'datadoghq.io'" in message
    assert all(site in message for site in SITES)


def test_datadog_host_overrides_site_and_loses_trailing_slashes() -> None:
    env = {"DATADOG_HOST": "http://127.0.0.1:8126//", "DD_SITE": "datadoghq.eu"}
    s = Settings.from_environ(env)
    assert s.base_url == "http://127.0.0.1:8126"
    assert s.events_url == "http://127.0.0.1:8126/api/v1/events"


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8126", "ftp://x.example", "https://", "https://u:p@h.example", "http://h?x=1"]
)
def test_bad_datadog_host(host: str) -> None:
    with pytest.raises(ConfigError, match="DATADOG_HOST"):
        Settings.from_environ({"DATADOG_HOST": host})


def test_unified_tags_order_split_and_dedupe() -> None:
    env = {
        "DD_ENV": "prod",
        "DD_SERVICE": "payments",
        "DD_VERSION": "1.4.2",
        "DD_TAGS": "team:platform, region:eu\tteam:platform  ,,zone:a",
    }
    assert unified_tags(env) == (
        "env:prod",
        "service:payments",
        "version:1.4.2",
        "team:platform",
        "region:eu",
        "zone:a",
    )
    assert unified_tags({"DD_ENV": "  ", "DD_TAGS": " , "}) == ()


def test_blank_key_counts_as_unset() -> None:
    assert Settings.from_environ({"DD_API_KEY": "  \n"}).api_key is None
    assert Settings.from_environ({"DD_API_KEY": f" {KEY}\n"}).api_key == Secret(KEY)


def test_require_api_key_explains() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_environ({}).require_api_key(hint="use --dry-run")
    assert "DD_API_KEY" in str(info.value) and "--dry-run" in str(info.value)
    assert "\n" not in str(info.value)


def test_secret_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    s = Settings.from_environ({"DD_API_KEY": KEY, "DD_ENV": "prod"})
    assert s.api_key is not None
    shown = [repr(s), str(s), repr(s.api_key), str(s.api_key), f"{s.api_key}",
             f"{s.api_key!r:>40}", str([s.api_key])]
    shown.append("%s %r" % (s.api_key, s.api_key))  # noqa: UP031 - old-style too
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("emitter.test").info("settings: %s %r", s, s.api_key)
    shown.append(caplog.text)
    for text in shown:
        assert KEY not in text
        assert KEY[-4:] not in text  # not even a tail
    assert "****" in repr(s)
    assert s.api_key.reveal() == KEY


def test_secret_equality_and_pickling() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    assert hash(Secret("a")) == hash(Secret("a"))
    with pytest.raises(TypeError):
        pickle.dumps(Secret(KEY))


def test_settings_is_frozen() -> None:
    s = Settings.from_environ({})
    with pytest.raises(AttributeError):
        s.site = "x"  # type: ignore[misc]


# ---- DogStatsD: the one reader of DD_DOGSTATSD_URL, DD_AGENT_HOST, DD_DOGSTATSD_PORT ----------

@pytest.mark.parametrize(("environ", "address", "expected"), [
    ({}, None, {"host": "localhost", "port": 8125}),
    ({"DD_AGENT_HOST": "agent", "DD_DOGSTATSD_PORT": "9125"}, None,
     {"host": "agent", "port": 9125}),
    ({"DD_DOGSTATSD_URL": "udp://10.0.0.2:8200", "DD_AGENT_HOST": "agent"}, None,
     {"host": "10.0.0.2", "port": 8200}),
    ({"DD_DOGSTATSD_URL": "unix:///var/run/dsd.sock"}, None,
     {"socket_path": "/var/run/dsd.sock"}),
    ({"DD_DOGSTATSD_URL": "udp://10.0.0.2:8200"}, "127.0.0.1:9999",
     {"host": "127.0.0.1", "port": 9999}),  # the option wins, as a constructor argument does
])
def test_dogstatsd_address_read_as_datadogpy_reads_it(environ: dict[str, str],
                                                      address: str | None,
                                                      expected: dict[str, object]) -> None:
    assert Settings.from_environ(environ).dogstatsd(address) == expected


def test_dogstatsd_env_agrees_with_datadogpy(monkeypatch: pytest.MonkeyPatch) -> None:
    from datadog.dogstatsd.base import DogStatsd

    for environ in ({"DD_AGENT_HOST": "agent", "DD_DOGSTATSD_PORT": "9125"},
                    {"DD_DOGSTATSD_URL": "udp://10.0.0.2:8200", "DD_AGENT_HOST": "x"}):
        for name in ("DD_AGENT_HOST", "DD_DOGSTATSD_PORT", "DD_DOGSTATSD_URL"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        theirs = DogStatsd(disable_telemetry=True, disable_background_sender=True)
        ours = Settings.from_environ(environ).dogstatsd()
        assert (ours["host"], ours["port"]) == (theirs.host, theirs.port)
        theirs.close_socket()


@pytest.mark.parametrize("environ", [{"DD_DOGSTATSD_URL": "http://agent:8125"},
                                     {"DD_DOGSTATSD_PORT": "eighty"},
                                     {"DD_DOGSTATSD_PORT": "²"}])
def test_bad_dogstatsd_env_names_the_variable(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=next(iter(environ))):
        Settings.from_environ(environ).dogstatsd()
