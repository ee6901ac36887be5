"""Shared runtime of the ragplane services.

Each service builds on the same pieces: settings validated at start-up (`settings`),
domain errors with their gRPC status codes (`errors`), structured logs and metrics and
traces (`logs`, `telemetry`, `interceptors`), client channels that carry the request
context to the next service (`channels`), and one server bootstrap (`server`).
"""
