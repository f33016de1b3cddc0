"""GridMap's benchmarks: `make bench` runs them all and prints one table (see bench/run.py)."""
