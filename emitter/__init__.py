"""emitter: configuration-driven Datadog events (rules -> templates -> checked event -> sink)."""

__version__ = "0.2.0"
