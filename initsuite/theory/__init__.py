"""Mean-field theory. ``maps``: the length and correlation maps, χ₁ and the fixed point q*,
vectorised; ``meanfield``: per-cell predictions; ``nets``: those of conv and residual-MLP
cells; ``phase``: the order–chaos phase diagram;
``gains``: what each activation's gain preserves; ``tables``: theory read against stored
tables (no torch)."""
