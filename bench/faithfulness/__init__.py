"""Faithfulness: how well the query service's score separates faithful answers from others."""
