"""Helpers for tests and benchmarks (throwaway servers); nothing here is used by the analysis."""
