"""Answer quality: how well an answer is supported by its passages, how sure the search was."""
