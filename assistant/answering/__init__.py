"""Retrieving and answering: hybrid retrieval, extractive and LLM answers, grounding, checks."""
