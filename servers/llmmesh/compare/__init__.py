"""Comparative analysis: one prompt, several models answering in parallel, a jury scoring them."""
