"""One API shape: the studies name the same things alike and each returns a Result."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import initsuite

# a plural name takes one value or several (the study runs each); a singular name takes one
PLURAL = {"schemes", "activations", "depths", "widths", "seeds", "devices", "dtypes", "archs"}
SINGULAR = {"scheme", "activation", "depth", "width", "seed", "device", "dtype", "arch"}
STUDIES = {
    "sweep": {"schemes", "activations", "depths", "widths", "seeds", "devices", "dtypes",
              "archs", "bias", "progress"},
    "train": {"schemes", "activations", "depth", "width", "seeds", "device", "dtype", "bias",
              "progress"},
    "probe_factory": {"schemes", "activation", "seed", "device", "dtype", "progress"},
    "probe": {"scheme", "activation", "seed"},
    "apply": {"scheme", "activation"},
    "tutorial_study": {"seeds", "progress"},
    "isometry_study": {"schemes", "activations", "depths", "width", "seeds"},
    "cmap_study": {"depths", "widths", "seeds", "device", "dtype"},
    "frameworks_study": {"seeds"},
    "zoo_study": {"schemes", "seed", "progress"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_studies_share_one_vocabulary(name: str) -> None:
    params = inspect.signature(getattr(initsuite, name)).parameters
    vocabulary = set(params) & (PLURAL | SINGULAR | {"bias", "progress"})
    assert vocabulary == STUDIES[name]
    # the subjects are positional; every setting is keyword-only
    subjects = [p for p in params.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert {"seeds", "seed", "bias", "progress", "devices", "dtypes"}.isdisjoint(
        p.name for p in subjects
    )


@pytest.mark.parametrize("name", ["sweep", "train"])
def test_bias_names_a_law_or_none(name: str) -> None:
    assert inspect.signature(getattr(initsuite, name)).parameters["bias"].default is None


def test_results_come_from_results_and_load_without_torch() -> None:
    code = """
import sys
sys.modules["torch"] = None
import initsuite
for name in ("SweepResult", "TrainingResult", "ProbeResult", "TutorialResult"):
    cls = getattr(initsuite, name)
    assert cls.__module__ == "initsuite.results." + name[:-6].lower(), cls.__module__
    assert callable(cls.load) and callable(cls.save)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_reproduce_runs_every_study_the_cli_has_by_name() -> None:
    """initsuite.reproduce covers each subject of ``initsuite reproduce`` (it ran only the
    tutorial), with that study's own settings, refusing one it does not take."""
    from initsuite.cli import _build_parser
    from initsuite.studies.reproduce import STUDIES

    _, commands = _build_parser()
    choices = next(a.choices for a in commands["reproduce"]._actions if a.dest == "study")
    assert sorted(STUDIES) == sorted(choices)
    for module, attr in STUDIES.values():
        study = getattr(initsuite, attr)
        assert f"{study.__module__}.{study.__name__}" == f"{module}.{attr}"
    with pytest.raises(
        initsuite.InitsuiteError, match=r"unknown study 'isometri'; did you mean 'isometry'"
    ):
        initsuite.reproduce("isometri")
    with pytest.raises(
        initsuite.InitsuiteError, match=r"takes no setting 'seed'; did you mean 'seeds'"
    ):
        initsuite.reproduce("tutorial", seed=3)
    assert initsuite.DaskExecutor.__module__ == "initsuite.studies.sweep.executors"


def test_reproduce_isometry_by_name_equals_the_study() -> None:
    import pandas as pd

    kwargs = dict(schemes=["orthogonal"], activations=["tanh"], depths=(2,), width=8, seeds=1)
    by_name = initsuite.reproduce("isometry", **kwargs)
    direct = initsuite.isometry_study(**kwargs)
    pd.testing.assert_frame_equal(by_name.spectra, direct.spectra)


def test_batch_is_batch_everywhere() -> None:
    """``batch`` (rows of a step or of an input) in every study; train took ``batch_size``,
    still accepted for one release with a warning (it is read as ``batch``)."""
    for name in ("sweep", "train", "probe_factory"):
        params = inspect.signature(getattr(initsuite, name)).parameters
        assert "batch" in params and "batch_size" not in params, name
    pytest.importorskip("sklearn")
    with (
        pytest.warns(DeprecationWarning, match=r"train\(batch_size=\.\.\.\).*use batch="),
        pytest.raises(initsuite.InitsuiteError, match="batch 5000 exceeds"),
    ):
        initsuite.train("kaiming_normal", "relu", depth=3, width=8, seeds=1, steps=1,
                        batch_size=5000)  # fmt: skip


def test_write_report_takes_its_settings_by_keyword_with_out_dir_last() -> None:
    """``write_report(run_dir, *, ..., out_dir=None)``: it took nine settings positionally,
    ``out_dir`` third."""
    params = list(inspect.signature(initsuite.write_report).parameters.values())
    assert [p.name for p in params if p.kind is not p.KEYWORD_ONLY] == ["run_dir"]
    assert params[-1].name == "out_dir"
    with pytest.raises(TypeError):
        initsuite.write_report("run", "tutorial")  # type: ignore[misc]


def test_sweep_runs_a_sweep_config_and_refuses_a_setting_beside_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``sweep(SweepConfig)`` runs the config the CLI builds (the CLI now calls it, with
    ``overwrite`` and ``command``); a grid setting beside a config would be ignored, so it is
    refused."""
    import pandas as pd

    from initsuite import SweepConfig

    grid = dict(depths=[3], widths=[8], timing=False)
    cfg = SweepConfig.build(["kaiming_normal"], ["tanh"], **grid)
    direct = initsuite.sweep(["kaiming_normal"], ["tanh"], **grid)
    out = tmp_path / "s"
    stored = initsuite.sweep(cfg, out_dir=out, command="initsuite sweep ...")
    pd.testing.assert_frame_equal(stored.cells, direct.cells)
    assert stored.meta["command"] == "initsuite sweep ..."
    again = initsuite.sweep(cfg, out_dir=out, overwrite=True)
    pd.testing.assert_frame_equal(again.cells, direct.cells)
    with pytest.raises(initsuite.InitsuiteError, match=r"drop depths, batch"):
        initsuite.sweep(cfg, depths=[4], batch=8)
    with pytest.raises(TypeError, match=r"needs activations, depths, widths"):
        initsuite.sweep(["kaiming_normal"])


# each public function's subjects (what it runs on): the only parameters given by position
SUBJECTS: dict[str, tuple[str, ...]] = {
    "sweep": ("schemes", "activations", "depths", "widths"),
    "train": ("schemes", "activations", "depth", "width"),
    "probe": ("model", "inputs"),
    "probe_factory": ("factory", "input_shape"),
    "coord_check": ("model", "parametrizations", "widths", "depths"),
    "apply": ("model", "scheme"),
    "parametrize": ("model", "parametrization"),
    "reproduce": ("name",),
    "tutorial_study": (),
    "isometry_study": ("schemes", "activations"),
    "cmap_study": ("nets",),
    "frameworks_study": ("laws",),
    "zoo_study": ("models",),
    "mutransfer_study": ("models",),
    "kernel_shaping_study": ("nets",),
    "write_report": ("run_dir",),
    "compare": ("base", "new"),
    "conventions": ("framework",),
    "gains": (),
    "result_class": ("kind",),
    # theory's functions of (σ_w², σ_b²): the point or grid is what they are evaluated on
    "critical_sigma_w2": ("activation", "sigma_b2"),
    "phase_diagram": ("activation", "sigma_w2", "sigma_b2"),
}
OUTPUT_NAMES = {"out", "output", "out_path", "output_dir", "out_directory", "outdir"}


@pytest.mark.parametrize(
    "name",
    [n for n in initsuite.__all__ if inspect.isfunction(inspect.unwrap(getattr(initsuite, n)))],
)
def test_every_public_function_keeps_the_api_rule(name: str) -> None:
    """docs/api-shape.md: the subjects positional, every setting keyword-only, an output
    directory named ``out_dir`` and last. ``sweep`` took ``out=`` among its settings, and
    ``compare`` its gates and ``conventions`` its layer by position."""
    params = list(inspect.signature(getattr(initsuite, name)).parameters.values())
    assert name in SUBJECTS, f"{name}: declare its subjects in SUBJECTS"
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert tuple(positional) == SUBJECTS[name], name
    named = [p.name for p in params if p.kind is not p.VAR_KEYWORD]
    assert not OUTPUT_NAMES & set(named), f"{name}: an output directory is named out_dir"
    if "out_dir" in named:
        assert named[-1] == "out_dir", f"{name}: out_dir goes last"


def test_sweep_takes_out_as_the_deprecated_name_of_out_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``out=`` works for one release, warning; giving both names is refused."""
    grid = dict(depths=[3], widths=[8], timing=False, progress=False)
    with pytest.warns(DeprecationWarning, match=r"sweep\(out=\.\.\.\) is deprecated; use out_dir"):
        res = initsuite.sweep("kaiming_normal", "tanh", out=tmp_path / "a", **grid)
    assert (tmp_path / "a" / "meta.json").exists() and len(res.cells) == 1
    with pytest.raises(initsuite.InitsuiteError, match="give out_dir alone"):
        initsuite.sweep(
            "kaiming_normal", "tanh", out=tmp_path / "b", out_dir=tmp_path / "b", **grid
        )
    assert not (tmp_path / "b").exists()


def test_autocasts_is_probe_factorys_grid_axis_and_older_directories_still_report(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """``probe_factory(autocasts=...)`` (a grid axis, plural; ``probe`` keeps its one
    ``autocast``): ``autocast=`` works for one release, warning. meta.json's config now says
    ``autocasts``; a directory written before says ``autocast``, and it still loads (nothing
    reads the key back: each row's ``autocast`` column holds its precision)."""
    import json

    from torch import nn

    def net() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 4), nn.Tanh())

    kw = dict(schemes=["kaiming_normal"], progress=False)
    new = initsuite.probe_factory(net, (2, 4), autocasts=["float32", "bfloat16"], **kw)
    with pytest.warns(DeprecationWarning, match=r"probe_factory\(autocast=\.\.\.\).*autocasts"):
        old = initsuite.probe_factory(net, (2, 4), autocast=["float32", "bfloat16"], **kw)
    assert new.calls.equals(old.calls) and set(new.calls["autocast"]) == {"float32", "bfloat16"}
    assert new.meta["config"]["autocasts"] == ["float32", "bfloat16"]
    assert "autocast" not in new.meta["config"]
    out = new.save(tmp_path / "p")
    meta = json.loads((out / "meta.json").read_text())
    meta["config"]["autocast"] = meta["config"].pop("autocasts")  # as written before
    (out / "meta.json").write_text(json.dumps(meta))
    back = initsuite.ProbeResult.load(out)
    assert back.calls.equals(new.calls) and back.meta["config"]["autocast"] == [
        "float32",
        "bfloat16",
    ]


def test_probe_factory_resolves_each_spec_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe of several schemes and a convention at several precisions parses each spec
    and the activation once, when configured; each pass re-draws from the objects."""
    from helpers import count_parses
    from torch import nn

    def net() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))

    parsed = count_parses(monkeypatch)
    result = initsuite.probe_factory(
        net, (2, 4), schemes=["kaiming_normal", "xavier_uniform:gain=auto", "flax"],
        activation="tanh", autocasts=["float32", "bfloat16"], progress=False,
    )  # fmt: skip
    assert set(result.calls["scheme"]) == {"as_built", "kaiming_normal",
                                           "xavier_uniform:gain=auto", "flax"}  # fmt: skip
    mine = {("scheme", "kaiming_normal"), ("scheme", "xavier_uniform:gain=auto"),
            ("activation", "tanh")}  # fmt: skip
    assert {k: parsed[k] for k in mine} == dict.fromkeys(mine, 1)
    # the laws of the convention's table: once per apply, one apply per pass (2 precisions)
    assert len(parsed) > len(mine) and max(parsed.values()) == 2
