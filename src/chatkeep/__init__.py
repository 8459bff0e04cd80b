"""chatkeep: a self-hosted OpenAI Chat Completions server with stored completions."""

__version__ = "0.1.0"
