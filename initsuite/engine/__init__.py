"""The numerical engine: the draw-order contract, MLP forward and backward passes, conv and
residual nets, Jacobian spectra and the timing pass. Tensors in, per-layer statistics out."""
