"""Answer caches of the query service: exact (Redis) and semantic (Weaviate), per tenant."""
