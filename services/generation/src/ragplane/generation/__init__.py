"""The generation service: a question and numbered passages in, a cited answer out."""
