"""make bench-ingest: chunks per second served through Ingest next to the in-process limit.

Issue 14 asks that ingestion approach what the embedding backend can do on the same chunks; this
package measures both in one run so that the ratio is taken on one machine in one state.
"""
