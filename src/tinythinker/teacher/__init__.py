"""Teacher rationales: prompts and exemplars, an async OpenAI-compatible client, a response cache,
reply parsing, importers of existing rationale datasets, and the stage-dataset builder.

Importing this package imports no optional dependency; ``openai`` and ``tiktoken`` are loaded
only when a chat teacher runs.
"""
