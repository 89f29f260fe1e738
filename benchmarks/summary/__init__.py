"""Summaries over the other studies' results: the paper's claims (verdicts) and the bench's hours."""
