"""avatar.motion: viseme rig (lip closures, openings, smoothness) and idle motion."""
import numpy as np
import pytest

from avatar.motion import add_idle, mouth_track, phoneme_motion
from avatar.motion.visemes import REAL_FIT, viseme_for
from avatar.types import Motion, Phoneme, Speech, Word


def timed(seq, start=0.4):
    """[(symbol, duration)] -> Phonemes back to back from `start`."""
    out, t = [], start
    for sym, d in seq:
        out.append(Phoneme(sym, t, t + d))
        t += d
    return out


# "bob ma, peep ... moo" with the symbol forms Piper emits (stress, length marks)
SEQ = [("b", .08), ("ˈɑː", .16), ("b", .08), (" ", .02), ("m", .08), ("ɑ", .14), ("ː", .05), (",", .2),
       ("p", .08), ("ˈiː", .15), ("p", .08), (" ", .02), ("m", .08), ("uː", .18), (".", .3)]
PH = timed(SEQ)


def centre(i):
    return (PH[i].start + PH[i].end) / 2


def test_viseme_table_handles_piper_symbols():
    assert viseme_for("p").closure and viseme_for("b").closure and viseme_for("m").closure
    assert viseme_for("ˈɑː").name == "AA" and viseme_for("ɑ").open > 0.2
    assert viseme_for("uː").width < 0 and viseme_for("iː").width > 0
    assert viseme_for("f").name == "FV" and viseme_for("θ").name == "TH" and viseme_for("tʃ").name == "SH"
    assert viseme_for(" ") is None and viseme_for("ˈ") is None
    assert viseme_for(".").name == "sil" and viseme_for("_").name == "sil"
    assert viseme_for("☃").name == "NEUTRAL"


@pytest.mark.parametrize("fps", [25, 30, 60])
def test_rig_closes_on_bilabials_and_opens_on_vowels(fps):
    n = Motion.frame_count(PH[-1].end + 0.3, fps)
    m = mouth_track(PH, n, fps)
    assert m.shape == (n, 2) and m.dtype == np.float32
    lead = REAL_FIT["lead"] if REAL_FIT else 0.0   # the fitted rig runs this far ahead of the phones
    frame = lambda t: int(round((t - lead) * fps))
    for i in (0, 2, 4, 8, 10, 12):                 # b b m p p m: lips shut at their centre
        assert m[frame(centre(i)), 0] < 0.02, (PH[i], m[frame(centre(i))])
    assert m[frame(centre(1)), 0] > 0.18           # ɑː wide open
    assert m[frame(PH[6].start), 0] > 0.15         # "ː" lengthens the ɑ before it
    assert m[frame(centre(9)), 1] > 0.03           # iː spread
    assert m[frame(centre(13)), 1] < -0.04         # uː rounded
    assert m[frame(centre(9)), 0] < m[frame(centre(1)), 0]
    # silence before, after, and in the long pause: exactly closed and relaxed
    assert np.all(m[: frame(PH[0].start - 0.1)] == 0)
    assert np.all(m[frame(PH[-1].end + 0.1):] == 0)
    assert np.all(m[frame(PH[14].start + 0.12): frame(PH[14].end - 0.1)] == 0)


def test_rig_is_smooth():
    fps = 100
    m = mouth_track(PH, Motion.frame_count(3.0, fps), fps)
    step = np.abs(np.diff(m, axis=0)).max(0)
    # the fastest opening in the clip spans at least ~4 frames at 100 fps: no snapping
    assert step[0] < 0.3 / 4 and step[1] < 0.05
    assert step[0] > 0.005                         # and it does move


def test_rig_empty_and_degenerate_input():
    assert np.all(mouth_track([], 10, 25) == 0)
    assert mouth_track(PH, 0, 25).shape == (0, 2)
    z = mouth_track([Phoneme("ɑ", 0.5, 0.5)], 30, 25)   # zero-length phoneme: no crash, no NaN
    assert np.isfinite(z).all()


def silent_speech(seconds, sr=16000):
    return Speech(np.zeros(int(seconds * sr), np.float32), sr)


def test_blinks_are_spaced_and_short():
    fps = 25
    mo = add_idle(np.zeros((Motion.frame_count(60, fps), 2)), None, fps, seed=3)
    b = mo.blink
    assert b.min() >= 0 and b.max() == 1
    peaks = np.nonzero(b == 1)[0] / fps
    gaps = np.diff(peaks)
    assert len(peaks) >= 9 and gaps.min() >= 1.9 and gaps.max() <= 6.1
    # each blink lasts 150-250 ms: at most 7 consecutive non-zero frames at 25 fps
    runs = np.diff(np.nonzero(np.diff(np.r_[0, (b > 0).astype(int), 0]))[0])[::2]
    assert runs.max() <= 0.25 * fps + 1
    assert np.all(mo.mouth == 0)


def test_head_sway_is_small_smooth_and_deterministic():
    fps = 25
    mouth = mouth_track(PH, 75, fps)
    sp = Speech(np.zeros(48000, np.float32), 16000, PH)
    a = add_idle(mouth, sp, fps, seed=7)
    b = add_idle(mouth, sp, fps, seed=7)
    c = add_idle(mouth, sp, fps, seed=8)
    for x, y in ((a.head, b.head), (a.blink, b.blink), (a.brow, b.brow)):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.head, c.head)
    assert np.array_equal(a.mouth, mouth)          # lip sync untouched
    assert np.abs(a.head).max() < 6 and np.abs(a.head).max() > 0.1
    assert np.abs(np.diff(a.head, axis=0)).max() < 0.5  # degrees per frame
    assert np.all(a.head[0] == 0) and np.all(a.head[-1] == 0)   # scenes join at the photo's pose


def test_still_and_expression_scale():
    fps = 25
    sp = Speech(np.zeros(48000, np.float32), 16000, PH, [Word("bob", 0.4, 0.72)])
    mouth = mouth_track(PH, 75, fps)
    base = add_idle(mouth, sp, fps, seed=1)
    still = add_idle(mouth, sp, fps, seed=1, still=True)
    assert np.all(still.head == 0) and np.array_equal(still.blink, base.blink)
    double = add_idle(mouth, sp, fps, seed=1, expression_scale=2.0)
    assert np.allclose(double.head, 2 * base.head, atol=1e-5)
    zero = add_idle(mouth, sp, fps, seed=1, expression_scale=0.0)
    assert np.all(zero.head == 0) and np.all(zero.brow == 0) and np.array_equal(zero.mouth, base.mouth)


def test_brows_rise_on_stressed_long_words_only():
    fps = 25
    words = [Word("bob", PH[0].start, PH[2].end), Word("peep", PH[8].start, PH[10].end)]
    sp = Speech(np.zeros(16000 * 3, np.float32), 16000, PH, words)
    n = Motion.frame_count(sp.duration, fps)
    raised = [add_idle(mouth_track(PH, n, fps), sp, fps, seed=s).brow for s in range(8)]
    assert any(r.max() > 0.4 for r in raised)
    for r in raised:                               # only around the stressed words' starts
        on = np.nonzero(r > 0)[0] / fps
        assert all(any(w.start - 0.15 <= t <= w.start + 1.0 for w in words) for t in on)
    # "bob" is stressed here but short of BROW_MIN_WORD: never raised
    short = [Word("bob", PH[0].start, PH[0].start + 0.2), words[1]]
    sp3 = Speech(sp.audio, sp.sample_rate, PH, short)
    for s in range(8):
        on = np.nonzero(add_idle(np.zeros((n, 2)), sp3, fps, seed=s).brow > 0)[0] / fps
        assert all(t >= PH[8].start - 0.15 for t in on)
    # without stress marks (as some voices give them) only long words are raised
    unstressed = [Phoneme(p.symbol.replace("ˈ", ""), p.start, p.end) for p in PH]
    sp2 = Speech(sp.audio, sp.sample_rate, unstressed, words)        # both words < 0.45 s
    assert all(add_idle(np.zeros((n, 2)), sp2, fps, seed=s).brow.max() == 0 for s in range(8))


def test_phoneme_motion_frame_count_rule():
    sp = Speech(np.zeros(int(2.345 * 22050), np.float32), 22050, PH)
    m = phoneme_motion(sp, 25, seed=0)
    assert len(m) == Motion.frame_count(sp.duration, 25)
    assert m.mouth.shape == (len(m), 2) and m.head.shape == (len(m), 3)
    assert m.mouth[int(round(centre(1) * 25)), 0] > 0.18


def test_tongue_shows_on_th_l_t_d_n_and_wide_vowels_and_never_jumps():
    from avatar.motion import tongue_track

    fps = 100
    seq = [("_", .3), ("ð", .1), ("ə", .1), ("l", .12), ("ɪ", .1), ("p", .1), ("ɑː", .2), ("m", .1),
           ("u", .15), ("t", .1), ("_", .4)]
    ph = timed(seq)
    n = Motion.frame_count(ph[-1].end, fps)
    tg = tongue_track(ph, n, fps)
    assert tg.shape == (n,) and tg.dtype == np.float32
    lead = REAL_FIT["lead"] if REAL_FIT else 0.0
    at = lambda i: float(tg[int(round(((ph[i].start + ph[i].end) / 2 - lead) * fps))])
    assert at(1) > 0.5 and at(3) > 0.4                 # ð, l: the tip comes up (l shared with its vowels)
    assert 0.15 < at(6) < at(1)                        # ɑː: some tongue body, less than ð
    assert at(9) > at(8) + 0.1                         # t after u: it rises for the t
    assert at(5) < 0.02 and at(7) < 0.02               # p, m: lips shut, no tongue
    assert at(0) < 0.02 and tg[-5:].max() < 0.02       # silences
    # temporal stability: a smooth track (no frame-to-frame jumps, no jitter)
    assert np.abs(np.diff(tg)).max() < 0.08            # at 100 fps: a full rise takes > 12 frames
    flips = np.sum(np.diff(np.sign(np.diff(tg[np.abs(np.diff(tg, append=tg[-1])) > 1e-4]))) != 0)
    assert flips <= 2 * len(seq)                       # at most one rise and fall per phoneme
    m = phoneme_motion(Speech(np.zeros(int(ph[-1].end * 16000), np.float32), 16000, ph), fps)
    assert np.array_equal(m.tongue, tg)                # the phoneme path carries it
    assert np.all(Motion.rest(3, 25).tongue == 0)      # elsewhere (the audio model) it is 0


def test_make_motion_keeps_the_tongue_when_it_fits_the_scene_length():
    # a scene longer or shorter than its speech: the tongue is cut or held like the mouth, not dropped
    from avatar.motion import make_motion
    from avatar.script.models import AvatarSpec

    fps = 25
    ph = timed([("_", .2), ("ð", .15), ("ə", .1), ("l", .15), ("_", .3)])
    speech = Speech(np.zeros(int(ph[-1].end * 16000), np.float32), 16000, ph)
    spec = AvatarSpec(motion="phonemes")
    full = make_motion(speech, fps, spec)
    assert full.tongue.max() > 0.3
    for n in (len(full) - 4, len(full) + 6):
        m = make_motion(speech, fps, spec, n_frames=n)
        assert len(m) == n and len(m.tongue) == n
        k = min(n, len(full))
        assert np.array_equal(m.tongue[:k], full.tongue[:k]) and np.array_equal(m.mouth[:k], full.mouth[:k])
