"""Benchmarks of ragplane's services; each runs as `python -m bench.<name>`."""
