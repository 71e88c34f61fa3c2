"""LLM trade-filter calibration (seed 004, Phase 3): context, prompts, providers, the harness
that asks them, and the analysis of their decisions against the trades' real P&L."""
