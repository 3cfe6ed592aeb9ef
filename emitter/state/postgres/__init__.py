"""The shared backend on PostgreSQL (psycopg 3): connection and migrations (db), outbox,
key/value state and throttle; see emitter.state.backend."""
