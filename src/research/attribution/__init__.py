"""What worked in which regime: agents' signals, strategy experiments and tuning
runs attributed to market regimes."""
