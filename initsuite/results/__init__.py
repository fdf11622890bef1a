"""Stored results: the column schema, the atomic chunked store, Result classes, summaries, gates
and comparisons. Nothing here imports torch: a results directory is readable without it."""
