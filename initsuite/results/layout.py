"""What initsuite writes where: the names of a results directory's files (meta.json, its
tables, chunks and figures, its documents), the marks its own files start with, and the names
of what a killed writer leaves behind. :mod:`initsuite.results.outputs` checks paths against
them, :mod:`initsuite.results.ownership` recognises initsuite's files by them. Never imports
torch.
"""

from __future__ import annotations

import re

__all__ = ["CHUNKS", "CHUNK_ENTRY", "FIGURES", "FIGURE_DIR", "FIGURE_FILE", "HTML_MARK",
           "LAYOUTS", "LEFTOVER", "MD_MARK", "MD_TITLE", "META", "PNG_SOFTWARE", "PROBE_PREFIX",
           "REPORT_FILES", "STAGING", "SWEEP_TABLES", "THEORY_DIR", "THEORY_TABLES"]  # fmt: skip

META = "meta.json"
FIGURE_DIR = "figures"
CHUNKS = "chunks"  # a sweep's cells, one chunk per group (initsuite.results.chunks)
# a sweep's theory tables, one chunk per grid it ran (initsuite.results.chunks)
THEORY_DIR = "theory"
REPORT_FILES = ("report.md", "compare.md", "report.html")
HTML_MARK = "<!DOCTYPE html>\n<!-- initsuite report"  # how a report.html initsuite wrote starts
MD_MARK = "# initsuite"  # how a Markdown file initsuite wrote starts (its title)
# the titles of the Markdown documents initsuite writes: a report, a study's report, a
# comparison, a probe's report (a user's "# initsuite notes" is not one)
MD_TITLE = re.compile(rb"# initsuite (?:[a-z]+ )?(?:report|compare|probe): ")
PNG_SOFTWARE = "initsuite"  # how the "Software" text of a PNG figure initsuite wrote starts
STAGING = ".initsuite-report-"  # a report's temporary directory inside its output directory

# a sweep's measured tables (one chunk per group of cells), and its theory tables (computed once
# from its configuration: what its report draws without recomputing)
SWEEP_TABLES: tuple[str, ...] = ("cells", "layers", "timing")
THEORY_TABLES: tuple[str, ...] = ("theory", "phase_points", "phase_grid")

# the tables each kind of results directory holds: what its ``save`` writes beside meta.json
LAYOUTS: dict[str, tuple[str, ...]] = {
    "sweep": (*SWEEP_TABLES, *THEORY_TABLES),
    "training": ("training", "runs"),
    "probe": ("probe", "blocks"),
    "tutorial": ("tutorial", "layers"),
    "isometry": ("spectra",),
    "frameworks": ("layers", "runs", "training", "training_runs", "conventions"),
    "coordcheck": ("coords",),
    "mutransfer": ("runs",),
    "cmap": ("cmap",),
    "kernel_shaping": ("curves", "runs", "cmap"),
}

# every figure a report draws (initsuite.report: the sweep's, the tutorial's and the training's
# figures, initsuite.report.probe_report's, the isometry and frameworks studies'); a figures/
# directory holding another was not written by initsuite
FIGURES = frozenset({
    "std_vs_layer", "grad_std_vs_layer", "weight_grad_vs_layer", "divergence_heatmap",
    "final_std_distribution", "init_time_vs_width", "cosine_vs_layer", "phase_diagram",
    "jacobian_spectra", "tutorial_std_vs_layer", "training_loss", "training_steps", "probe_std",
    "probe_blocks", "probe_scaling", "probe_blocks_std", "probe_blocks_grad",
    "frameworks_final_std", "frameworks_sigma_w2", "frameworks_training", "verdict",
    "coords_l1", "coords_delta", "coords_depth", "mutransfer_mlp", "mutransfer_transformer",
    "mutransfer_resmlp", "network_cmap", "kernel_shaping_loss",
})  # fmt: skip

_RANDOM = r"[a-z0-9_]{8}"  # the random part of tempfile's names
PROBE_PREFIX = ".initsuite-probe-"  # a writability probe's file (outputs.check_output)
# what a killed atomic write (store.atomic_write_bytes) or writability probe leaves behind
LEFTOVER = re.compile(
    rf"\.(meta\.json|report\.md|compare\.md|report\.html)\.{_RANDOM}|{re.escape(PROBE_PREFIX)}\w+"
)
# a figure's PNG, or a killed write's temporary of one
FIGURE_FILE = re.compile(rf"(\.?)([a-z0-9_]+)\.png(\.{_RANDOM})?")
CHUNK_ENTRY = re.compile(r"[0-9a-f]{24}|\.tmp-.+")  # a chunk, or a killed writer's temporary
