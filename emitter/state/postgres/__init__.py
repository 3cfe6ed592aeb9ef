"""The shared backend on PostgreSQL (psycopg 3): the connection pool and migrations (db) and the
key/value state (kv); its outbox and throttle are emitter.delivery.pgoutbox and .pgthrottle,
and emitter.delivery.backend chooses between it and SQLite."""
