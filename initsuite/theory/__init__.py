"""Mean-field theory. :mod:`~initsuite.theory.maps`: the length and correlation maps, χ₁ and
the fixed point q*, vectorised; :mod:`~initsuite.theory.meanfield`: per-cell predictions;
:mod:`~initsuite.theory.nets`: those of conv and residual-MLP cells;
:mod:`~initsuite.theory.phase`: the order–chaos phase diagram; :mod:`~initsuite.theory.gains`:
what each activation's gain preserves; :mod:`~initsuite.theory.spread`: the across-seed spread
at finite width; :mod:`~initsuite.theory.coord_exponents`: the width and depth exponents each
parametrization predicts for a coordinate check. Theory read against stored tables (no torch) is
:mod:`initsuite.results.agreement`."""
