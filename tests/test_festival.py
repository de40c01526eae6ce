"""Festival voices for the lips corpus: phone mapping, Scheme script, real synthesis (if installed)."""
import shutil

import numpy as np
import pytest

from avatar.errors import AvatarError
from avatar.lips import festival as FV
from avatar.motion.visemes import PHONEME_VISEME, VISEMES, viseme_for

RADIO_PHONES = ["aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "b", "ch", "d", "dh", "dx", "eh", "el", "em",
                "en", "er", "ey", "f", "g", "hh", "hv", "ih", "iy", "jh", "k", "l", "m", "n", "nx", "ng", "ow",
                "oy", "p", "r", "s", "sh", "t", "th", "uh", "uw", "v", "w", "y", "z", "zh", "pau", "h#", "brth"]


def test_every_festival_phone_maps_to_a_known_viseme():
    assert set(RADIO_PHONES) <= set(FV.PHONE_IPA)
    for phone in RADIO_PHONES:
        ipa = FV.PHONE_IPA[phone]
        v = viseme_for(ipa)
        assert v is not None and v is not VISEMES["NEUTRAL"], (phone, ipa)
        assert ipa in PHONEME_VISEME or ipa[0] in PHONEME_VISEME or v is VISEMES["sil"], (phone, ipa)
    assert viseme_for(FV.PHONE_IPA["pau"]) is VISEMES["sil"]
    assert viseme_for(FV.PHONE_IPA["m"]).closure and viseme_for(FV.PHONE_IPA["uw"]).name == "OO"


def test_scheme_script_escapes_quotes_and_backslashes(tmp_path):
    assert FV.scheme_string('say "hi"\\ now\n') == '"say \\"hi\\"\\\\ now"'
    items = [('He said "no".', 1.1, 2.0), ("back\\slash", 0.9, -1.0)]
    script = FV.synth_script(FV.VOICES["kal"], items, tmp_path)
    assert '(utt.synth (Utterance Text "He said \\"no\\"."))' in script
    assert '"back\\\\slash"' in script
    assert "SayText" not in script and "(voice_kal_diphone)" in script
    assert "Duration_Stretch 1.1000" in script and "target_f0_mean" in script
    hts = FV.synth_script(FV.VOICES["slt"], items[:1], tmp_path)
    assert '"-r" 0.9091' in hts and script.count("utt.save.wave") == 2


def test_unknown_voice_is_a_one_line_error():
    with pytest.raises(AvatarError, match="unknown voice 'bob'"):
        FV.check_voices(["piper", "bob"])
    FV.check_voices(["piper"])   # no Festival needed


@pytest.mark.skipif(shutil.which("festival") is None, reason="festival not installed")
def test_real_synthesis_gives_aligned_phonemes_and_rig_targets():
    from avatar.lips import dataset as D

    voices = FV.installed_voices()
    if not voices:
        pytest.skip("no Festival English voice installed")
    utts = FV.synthesize(voices[0], [("Bob bought a blue balloon.", 1.2, 2.0), ("Why?", 0.9, -2.0)])
    assert len(utts) == 2
    for u in utts:
        dur = len(u.audio) / 16000
        assert u.audio.dtype == np.float32 and 0.3 < dur < 10 and 0.01 < np.abs(u.audio).max() <= 1.0
        starts = np.array([p.start for p in u.phonemes])
        ends = np.array([p.end for p in u.phonemes])
        assert len(u.phonemes) >= 3 and (starts >= 0).all() and (ends <= dur + 0.05).all()
        assert (ends >= starts).all() and (np.diff(starts) >= 0).all() and (np.diff(ends) >= 0).all()
        assert all(p.symbol in set(FV.PHONE_IPA.values()) for p in u.phonemes)
    u = utts[0]
    assert "b" in [p.symbol for p in u.phonemes] and "u" in [p.symbol for p in u.phonemes]
    targets = D.rig_targets(u.phonemes, len(u.audio) // 320)
    assert targets[:, 0].max() > 0.1 and targets[:, 0].std() > 0.02 and targets[:, 1].min() < -0.03
