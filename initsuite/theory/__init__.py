"""Mean-field theory: the variance and correlation maps, their fixed points, χ₁, per-cell
predictions, the order-chaos phase diagram and the gains that preserve each moment."""
