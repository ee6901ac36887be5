"""The retrieval service: chunks with vectors per tenant, hybrid search over them."""
