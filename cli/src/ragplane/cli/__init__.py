"""The `ragplane` command: ask, ingest, and a local stack for development."""
