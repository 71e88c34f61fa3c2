"""LLM trade-filter calibration (the validation plan's AI filter): context, prompts, providers, the
harness that asks them, and the analysis of their decisions against the trades' real P&L."""
