"""What worked in which regime: signals (seed 000), experiments (seed 001) and tuning runs
(seed 002) attributed to market regimes."""
