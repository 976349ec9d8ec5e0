"""How fast the pipeline is and how far it goes: `python -m benchmarks` runs every benchmark and prints a table."""
