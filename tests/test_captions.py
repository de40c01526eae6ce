"""Captions: cue building rules and SRT / WebVTT files (read back with the same libraries)."""
from __future__ import annotations

import random

import pytest

from avatar.captions import build_cues, layout, write_srt, write_vtt
from avatar.script.models import CaptionSpec
from avatar.speech.piper_voice import strip_word
from avatar.types import Word

TEXT = (
    "Welcome to this short tour of the avatar presenter. In the next few minutes, we will look "
    "at how a script becomes a video: the narration, the slides, and the captions. First, you "
    "write a script. Then the tool speaks it, moves the face, and writes an MP4 you can share "
    "anywhere. Extraordinarily long words like incomprehensible still fit. Questions? Ask "
    "them at the end!"
)


def timed_words(text: str, seed: int = 0, long_gaps: dict[int, float] | None = None) -> list[Word]:
    """Words with speech-like durations: ~0.06 s per character, pauses after punctuation."""
    rng = random.Random(seed)
    words, t = [], 0.3
    for i, token in enumerate(text.split()):
        d = 0.12 + 0.06 * len(token) * rng.uniform(0.8, 1.2)
        words.append(Word(strip_word(token), t, t + d))
        t += d + (0.35 if token[-1] in ".?!" else 0.15 if token[-1] in ",;:" else 0.03)
        t += (long_gaps or {}).get(i, 0.0)
    return words


def check_rules(cues, words, spec):
    # every word exactly once, in order
    assert [w for c in cues for w in c.words] == words
    for c in cues:
        assert 1 <= len(c.lines) <= spec.max_lines
        assert all(len(line) <= spec.max_chars for line in c.lines), c.lines
        assert c.start == c.words[0].start and c.end >= c.words[-1].end
        if len(c.words) > 1:
            assert c.words[-1].end - c.words[0].start <= spec.max_duration + 1e-9
        for a, b in zip(c.words, c.words[1:]):
            assert b.start - a.end <= spec.max_gap      # never spans a long silence
    for a, b in zip(cues, cues[1:]):
        assert a.end <= b.start                          # no overlap
        assert a.end - a.start >= min(spec.min_duration, b.start - a.start) - 1e-9


@pytest.mark.parametrize("spec", [
    CaptionSpec(),
    CaptionSpec(max_chars=16, max_lines=1),
    CaptionSpec(max_chars=30, max_lines=3, max_duration=4.0),
    CaptionSpec(max_chars=12, max_lines=2, min_duration=2.0),
])
def test_cue_rules(spec):
    words = timed_words(TEXT, seed=1, long_gaps={20: 1.5, 40: 0.9})
    cues = build_cues(words, spec, TEXT)
    check_rules(cues, words, spec)
    # the words shown are the script's own tokens, punctuation included
    shown = "\n".join(c.text for c in cues).replace("-\n", "").split()
    assert shown == TEXT.split()


def test_overlong_word_is_wrapped_or_cut():
    words = [Word("https://example.com/a/very/long/path", 0.0, 2.0), Word("ok", 2.1, 2.3)]
    cues = build_cues(words, CaptionSpec(max_chars=12, max_lines=2))
    assert cues[0].lines == ("https://exa-", "mple.com/a/…") and cues[1].text == "ok"
    cues = build_cues(words[:1], CaptionSpec(max_chars=40, max_lines=1))
    assert cues[0].lines == ("https://example.com/a/very/long/path",)


def test_gap_splits_cues():
    words = timed_words("one two three four", long_gaps={1: 1.0})
    cues = build_cues(words, CaptionSpec(max_gap=0.7))
    assert [c.text for c in cues] == ["one two", "three four"]
    assert len(build_cues(words, CaptionSpec(max_gap=2.0))) == 1


def test_breaks_prefer_sentence_ends():
    text = "The first sentence is here. The second one follows with some more words in it"
    words = timed_words(text)
    cues = build_cues(words, CaptionSpec(max_chars=30, max_lines=1), text)
    assert cues[0].text == "The first sentence is here."
    commas = "We cut here, not in the middle of this"
    cues = build_cues(timed_words(commas), CaptionSpec(max_chars=30, max_lines=1), commas)
    assert cues[0].text == "We cut here,"


def test_without_text_pauses_guide_breaks():
    words = timed_words(TEXT)
    cues = build_cues(words, CaptionSpec())
    check_rules(cues, words, CaptionSpec())
    assert all("," not in line and "." not in line for c in cues for line in c.lines)


def test_balanced_two_line_layout():
    tokens = "a fairly long caption that needs two lines to be shown".split()
    lines, _ = layout(tokens, 42, 2)
    assert len(lines) == 2 and abs(len(lines[0]) - len(lines[1])) <= 8
    assert layout(["x" * 50], 42, 2) is None
    assert layout(tokens, 42, 1) is None
    assert layout(["short", "one"], 42, 2)[0] == ("short one",)


def test_min_duration_never_overlaps():
    words = [Word("Hi", 0.0, 0.2), Word("there", 1.0, 1.3), Word("friend", 1.35, 1.6)]
    cues = build_cues(words, CaptionSpec(max_gap=0.5, min_duration=1.5))
    assert [c.text for c in cues] == ["Hi", "there friend"]
    assert cues[0].end == pytest.approx(1.0)     # stretched up to the next cue, not beyond
    assert cues[1].end == pytest.approx(2.5)     # stretched to min_duration
    assert build_cues([], CaptionSpec()) == []


def test_srt_and_vtt_round_trip(tmp_path):
    import srt
    import webvtt

    words = timed_words(TEXT, seed=3)
    cues = build_cues(words, CaptionSpec(), TEXT)
    subs = list(srt.parse(write_srt(tmp_path / "c.srt", cues).read_text(encoding="utf-8")))
    vtt = list(webvtt.read(str(write_vtt(tmp_path / "c.vtt", cues))))
    assert len(subs) == len(vtt) == len(cues)
    for c, s, v in zip(cues, subs, vtt):
        assert s.content == c.text and v.text == c.text
        assert s.start.total_seconds() == pytest.approx(c.start, abs=1e-3)
        assert s.end.total_seconds() == pytest.approx(c.end, abs=1e-3)
        assert _vtt_seconds(v.start) == pytest.approx(c.start, abs=1e-3)
        assert _vtt_seconds(v.end) == pytest.approx(c.end, abs=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.srt", "c.vtt"]


def _vtt_seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
