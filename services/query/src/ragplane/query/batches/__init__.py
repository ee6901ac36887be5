"""Batch mode: questions queued durably in Redis, answered when there is room, cheaper."""
