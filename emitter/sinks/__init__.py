"""Where rendered, validated events go. Every sink makes one attempt per `send`; retries are
decided in one place (emitter.delivery.retry), never inside a sink."""
