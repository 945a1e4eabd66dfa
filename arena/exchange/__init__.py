"""Import and export of battles in other tools' formats (FastChat, arena-rank, LLMFAO, Open WebUI)
and the arena's own lossless JSONL: ``service.battles_import`` / ``service.battles_export``."""
