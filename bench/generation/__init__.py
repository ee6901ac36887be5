"""make bench-generation: the generation service under injected faults, and its overhead."""
