"""The embedding service: texts in, L2-normalised vectors out."""
