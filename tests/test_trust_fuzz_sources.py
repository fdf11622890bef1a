"""Property-based fuzzing of model sources and ``--vary`` (issue 27): arbitrary override values
for a tiny Hugging Face GPT-2, given in its spec or swept with ``vary``.

The property: the model is probed (a row per module call, finite as-built statistics where the
values are), or an :class:`InitsuiteError` whose message is one line is raised before any probe.
Never another exception (transformers' ``KeyError`` for an unknown activation, its strict-field
errors, a forward pass failing on ``n_layer=-1``), and never a long build: sizes past the limit
are refused by arithmetic. The example budget is fixed and derandomised (tests/conftest.py),
about 2 s in all.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initsuite.core.errors import InitsuiteError
from initsuite.studies.probe_factory import probe_factory

transformers = pytest.importorskip("transformers")

BASE = "hf:gpt2,n_layer=1,n_embd=8,n_head=2,vocab_size=16,n_positions=8"
# GPT-2's own keys, two aliases, a misspelling and a key every config has
OWN = set(transformers.GPT2Config().to_dict()) - set(transformers.PretrainedConfig().to_dict())
KEYS = [*sorted(OWN - {"model_type"}), "num_hidden_layers", "hidden_size", "n_layers", "dtype"]
WORDS = [
    "-1", "0", "1", "2", "3", "4", "16", "0.5", "1.5", "-0.1", "nan", "inf", "-inf", "1e400",
    "100000", "1000000000", "true", "none", "gelu", "relu", "<b>x</b>", "[1,2]", "[]", "x",
    "1_0", "１", "0x10", "", "=", ",",
]  # fmt: skip
values = st.one_of(st.sampled_from(WORDS), st.integers(-3, 12).map(str),
                   st.floats(allow_nan=True).map(repr), st.text(max_size=5))  # fmt: skip
LIMIT = 10**6  # every refusal of size is as cheap as the property needs


def _outcome(call: object) -> str:
    """What a probe did: ``"rows"`` where it probed rows, else its InitsuiteError's message
    (``""`` for a probe without rows)."""
    try:
        result = call()  # type: ignore[operator]
    except InitsuiteError as exc:
        return str(exc)
    return "rows" if len(result.calls) > 0 else ""


@settings(max_examples=10)
@given(key=st.sampled_from(KEYS), value=values)
def test_any_override_in_the_spec_is_probed_or_one_line(key: str, value: str) -> None:
    spec = ",".join([*(i for i in BASE.split(",") if i.partition("=")[0] != key), f"{key}={value}"])
    said = _outcome(lambda: probe_factory(spec, batch=1, max_parameters=LIMIT, progress=False))
    assert said and "\n" not in said, repr(said)  # rows, or one line naming the problem


@settings(max_examples=8)
@given(key=st.sampled_from(KEYS), items=st.lists(values, min_size=1, max_size=2))
def test_any_vary_is_probed_or_one_line(key: str, items: list[str]) -> None:
    vary = [f"{key}={','.join(items)}"]  # as the CLI's --vary gives it
    said = _outcome(lambda: probe_factory(BASE, batch=1, max_parameters=LIMIT, vary=vary,
                                          progress=False))  # fmt: skip
    assert said and "\n" not in said, repr(said)  # rows, or one line naming the problem
