"""The arena for other tools: personal API tokens, battles collected elsewhere, the schema."""
