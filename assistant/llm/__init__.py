"""LLM backends: the openai client for any OpenAI-compatible server, and the prompt files."""
