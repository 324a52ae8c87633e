"""Property-based fuzzing of the experiment config loader: random bytes, random YAML documents and mutated valid
configs give a ConfigFile or a one-line UserError, never another exception."""

from __future__ import annotations

import yaml
from fuzz_support import FUZZ, clean, folder, json_values, random_bytes, records, short_text, tricky_text, write
from hypothesis import given
from hypothesis import strategies as st

from xstilts.config.load import load_config

TOP_LEVEL = (
    "name protocol model seeds head_pooling tasks_dir data_dir intermediate targets trackers resources "
    "accelerate report grid"
).split()
VALID = {
    "name": "fuzz",
    "model": "me5-small@L4",
    "seeds": [1],
    "intermediate": {"settings": ["none", "pocket-answer"], "train": {"lr": 5e-5, "batch_size": 16, "max_steps": 4}},
    "targets": [{"task": "pocket-topic", "train": {"batch_size": 16}, "eval": {"max_length": 32}}],
}


def _load(text: str | bytes) -> None:
    with folder() as d:
        clean(lambda: load_config(write(d / "exp.yaml", text)))


def _dump(doc) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@FUZZ
@given(random_bytes)
def test_config_random_bytes(data):
    _load(data)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("ab1 :-[]{}!&*?|>'\"#%@`,\n\t\\")) | st.characters(), max_size=120))
def test_config_random_yaml_text(text):
    _load(text)


@FUZZ
@given(st.dictionaries(st.sampled_from(TOP_LEVEL) | tricky_text, json_values, max_size=6))
def test_config_random_mappings(doc):
    _load(_dump(doc))


def _paths(doc, prefix=()):
    """Every (path) of a nested dict/list document."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(VALID) if p]


def _mutate(doc, path, value):
    import copy

    out = copy.deepcopy(doc)
    node = out
    for k in path[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()
GRID_KEYS = ["model", "seeds", "intermediate.train.lr", "targets.*.train.lr", "targets.pocket-topic.eval.layer"]


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(PATHS), json_values | st.just(_DELETE)), max_size=3),
    records({k: json_values for k in TOP_LEVEL}),
    st.dictionaries(
        st.sampled_from(GRID_KEYS) | short_text, st.lists(json_values, max_size=3) | json_values, max_size=2
    ),
)
def test_config_mutated_valid(mutations, extra, grid):
    doc = VALID
    for path, value in mutations:
        try:
            doc = _mutate(doc, path, value)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced the parent
    doc = {**doc, **{k: v for k, v in extra.items() if k in TOP_LEVEL and k not in doc}}
    if grid:
        doc = {**doc, "grid": grid}
    _load(_dump(doc))
