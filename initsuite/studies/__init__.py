"""Studies: what a user runs (sweep, training, probe, tutorial), each writing a results directory."""
