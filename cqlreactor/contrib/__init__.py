"""Optional integrations, each behind its own extra (``cqlreactor[otel]``: ``contrib/otel.py``).
Nothing here is imported by the driver itself."""
