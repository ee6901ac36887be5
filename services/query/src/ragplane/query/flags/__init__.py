"""Feature flags per tenant, hot-reloaded from a mounted file; A/B variants; shadow generation."""
