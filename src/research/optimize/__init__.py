"""Diagnostics for parameter-grid optimisation: how likely is the winner an accident?"""
