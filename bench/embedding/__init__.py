"""`make bench-embedding`: ragplane's embedding service against the model's limit and Infinity.

Run as `.venv/bin/python -m bench.embedding` after `scripts/install-bench.sh`.
"""
