"""The query service: the public entry point of ragplane."""
