"""The adapters people use: the CLI, the Gradio chat UI and the OpenAI-compatible HTTP API."""
