"""Comparing runs: collecting run records (disk or W&B), grouping them into the paper's tables, statistics."""
