"""Studies: what a user runs (sweep, training, probe, tutorial); each returns a Result."""
