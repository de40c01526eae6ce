"""Property-based tests: any text given to a script loader or to the narration markup either
loads or gives the one-line AvatarError, never another exception, and within a time bound."""
from __future__ import annotations

import datetime
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings, strategies as st  # noqa: E402

from avatar.errors import AvatarError  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=datetime.timedelta(seconds=2), derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# text that looks like our inputs often enough to get past the first check: YAML and Markdown
# punctuation, markup brackets, keys the models know, and any character at all
_PIECES = st.sampled_from(["\n", "  ", "- ", ": ", "---\n", "scenes:", "narration:", "slide:", "layout:", "title:",
                           "bullets", "[", "]", "[pause 1s]", "[next]", "&a", "*a", "!!str", "{", "}", "<!--", "-->",
                           "# ", "## ", "```", "extends:", "voice:", "'", '"', "\t", "\u200b", "\u202e", "ä"])
TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=40).map("".join)


def _loads_or_avatar_error(path: Path, text: str) -> None:
    from avatar.script import load

    path.write_text(text, encoding="utf-8")
    try:
        deck = load(path)
    except AvatarError as e:
        assert "\n" not in str(e)
        return
    assert deck.scenes


@pytest.mark.parametrize("suffix", [".yaml", ".md", ".txt"])
def test_any_text_loads_or_is_one_line_error(tmp_path, suffix):
    @SETTINGS
    @given(TEXT)
    @example(": ")   # a top-level key None (found by this test: an IndexError in the error message)
    def check(text):
        _loads_or_avatar_error(tmp_path / f"script{suffix}", text)

    check()


_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 6, 10 ** 6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["bullets", "title", "pip", "dark", "joe", "[pause 2s]"]))
_KEYS = st.sampled_from(["title", "size", "fps", "theme", "voice", "avatar", "captions", "transition", "scenes",
                         "slide", "layout", "narration", "bullets", "preset", "speed", "photo", "extends", "x"])
TREE = st.recursive(_SCALAR, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_KEYS, kids, max_size=5),
                    max_leaves=30)


@SETTINGS
@given(st.dictionaries(_KEYS, TREE, max_size=6))
def test_any_yaml_tree_loads_or_is_one_line_error(tmp_path_factory, tree):
    import io

    from ruamel.yaml import YAML

    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(tree, buf)
    _loads_or_avatar_error(tmp_path_factory.mktemp("tree") / "t.yaml", buf.getvalue())


@SETTINGS
@given(TEXT)
def test_markup_parses_or_is_markup_error(text):
    from avatar.speech import markup

    try:
        segments = markup.parse(text)
    except markup.MarkupError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert all(isinstance(s, (str, markup.Pause, markup.Marker)) for s in segments)
    assert "[" not in markup.plain_text(text) and "]" not in markup.plain_text(text)
