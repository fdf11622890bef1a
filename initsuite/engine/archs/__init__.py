"""Architectures a sweep can run, as specs: ``mlp``, ``conv:kernel=3,image=8``,
``resmlp:branch=2,scale=1``. Each is an :class:`Arch` subclass in one file of this package,
registered by name (:func:`~initsuite.engine.archs.base.register`).

* ``mlp``: the tutorial's net, ``depth`` × Linear(width, width) + activation (optional bias).
* ``conv``: ``depth`` × Conv2d(width, width, kernel, padding=kernel // 2) + activation on a
  (batch, width, image, image) N(0, 1) input; width is the channel count, fans are the
  kernel's receptive field as torch computes them (fan_in = width · kernel²). Statistics are
  over every value of a layer's output (batch × channels × pixels).
* ``resmlp``: ``depth`` residual blocks h ← h + α · f(h) with a pre-activation branch
  f(h) = W_m φ(⋯ φ(W_1 φ(h))) of ``branch`` = m Linear(width, width) layers; statistics are
  those of h after each block (the identity path is never squashed). α is ``scale``: ``1``,
  ``inv_sqrt_depth`` (1/√L for L blocks) or ``zero`` (a learned scalar initialised to 0, as
  in ReZero/SkipInit). Schemes that take a layer context (fixup, skipinit, rezero, gpt2) see
  each weight's role: ``branch``, ``branch_out`` (the residual projection) or
  ``residual_scale`` (α itself), and the network's count of residual projections (one per
  block: N = L, GPT-2's 1/√N).
"""

from __future__ import annotations

# isort: off
from initsuite.engine.archs.base import Arch, Prior, parse_arch, register, registered
from initsuite.engine.archs.mlp import MLP
from initsuite.engine.archs.conv import Conv
from initsuite.engine.archs.resmlp import RESIDUAL_SCALES, ResMLP

# isort: on

__all__ = ["ARCH_NAMES", "MLP", "RESIDUAL_SCALES", "Arch", "Conv", "Prior", "ResMLP",
           "parse_arch", "register", "registered"]  # fmt: skip

ARCH_NAMES: tuple[str, ...] = registered()
"""The built-in architectures (:func:`registered` also lists those registered since)."""
