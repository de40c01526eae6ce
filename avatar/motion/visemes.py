"""Phoneme (IPA as emitted by espeak/Piper) -> viseme -> mouth target [open, width].

Units are those of avatar.types.MOUTH_PARAMS: open = inner-lip gap / outer-eye-corner
distance, width = mouth-corner distance change / outer-eye-corner distance.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Viseme:
    name: str
    open: float        # target inner-lip gap (eye-distance units)
    width: float       # target mouth-width change (eye-distance units)
    dominance: float   # how strongly it resists its neighbours (Cohen-Massaro alpha)
    closure: bool = False   # lips must fully close at its centre (p, b, m)
    tongue: float = 0.0     # tongue in view (avatar.types.Motion.tongue): tip up for th/l/t/d/n, body for wide vowels


VISEMES: dict[str, Viseme] = {v.name: v for v in [
    Viseme("sil", 0.00, 0.00, 1.0),
    Viseme("PBM", 0.00, 0.00, 0.3, closure=True),   # bilabial: the closure envelope shuts the lips
    Viseme("FV", 0.02, 0.01, 0.9),                  # lower lip on upper teeth
    Viseme("TH", 0.05, 0.02, 0.6, tongue=1.0),  # tongue between teeth
    Viseme("TDN", 0.05, 0.02, 0.45, tongue=0.5),  # alveolar t d n s z
    Viseme("SH", 0.05, -0.05, 0.7),                 # ʃ ʒ tʃ dʒ: protruded
    Viseme("KG", 0.07, 0.00, 0.35),                 # velar k g ŋ
    Viseme("R", 0.05, -0.05, 0.6),
    Viseme("L", 0.08, 0.00, 0.4, tongue=0.9),
    Viseme("W", 0.03, -0.09, 0.9),                  # w: tight rounding
    Viseme("Y", 0.04, 0.04, 0.5),
    Viseme("H", 0.09, 0.00, 0.1),                   # takes the shape of its neighbours
    Viseme("AA", 0.27, 0.02, 1.0, tongue=0.2),  # ɑ a æ: wide open
    Viseme("AE", 0.22, 0.04, 1.0, tongue=0.2),
    Viseme("AH", 0.16, 0.00, 0.8, tongue=0.15),  # ʌ
    Viseme("SCHWA", 0.10, 0.00, 0.5),               # ə ɐ: short, weak
    Viseme("EH", 0.15, 0.04, 0.9),                  # ɛ e
    Viseme("IH", 0.09, 0.05, 0.8),                  # ɪ
    Viseme("EE", 0.07, 0.07, 0.9),                  # i: spread
    Viseme("AW", 0.20, -0.05, 1.0),                 # ɔ ɒ
    Viseme("OH", 0.14, -0.07, 1.0),                 # o
    Viseme("OO", 0.07, -0.08, 1.0),                 # ʊ u
    Viseme("ER", 0.10, -0.03, 0.8),                 # ɜ ɚ ɝ
    Viseme("NEUTRAL", 0.06, 0.00, 0.3),             # anything unknown
]}

# Single IPA symbols and common multi-character ones. Diphthongs and affricates are
# looked up whole first, then by their first character.
PHONEME_VISEME: dict[str, str] = {
    # bilabials
    "p": "PBM", "b": "PBM", "m": "PBM", "ɱ": "FV",
    # labiodentals
    "f": "FV", "v": "FV",
    # dentals
    "θ": "TH", "ð": "TH",
    # alveolars
    "t": "TDN", "d": "TDN", "n": "TDN", "s": "TDN", "z": "TDN", "ɾ": "TDN", "ɫ": "L", "n̩": "TDN",
    # postalveolars / affricates
    "ʃ": "SH", "ʒ": "SH", "tʃ": "SH", "dʒ": "SH", "ʧ": "SH", "ʤ": "SH",
    # velars, glottals
    "k": "KG", "g": "KG", "ɡ": "KG", "ŋ": "KG", "x": "KG", "h": "H", "ʔ": "H",
    # approximants
    "ɹ": "R", "r": "R", "ɻ": "R", "l": "L", "w": "W", "ʍ": "W", "j": "Y",
    # vowels
    "ɑ": "AA", "a": "AA", "aɪ": "AA", "aʊ": "AA", "ɑː": "AA", "ɐ": "SCHWA", "æ": "AE",
    "ʌ": "AH", "ə": "SCHWA", "ɚ": "ER", "ɜ": "ER", "ɝ": "ER", "ɛ": "EH", "e": "EH", "eɪ": "EH",
    "ɪ": "IH", "ᵻ": "IH", "ɨ": "IH", "i": "EE", "y": "OO", "ʏ": "OO",
    "ɔ": "AW", "ɒ": "AW", "ɔɪ": "AW", "o": "OH", "oʊ": "OH", "əʊ": "OH",
    "ʊ": "OO", "u": "OO", "ɯ": "OO", "ø": "OH", "œ": "EH",
}

# The design table above fitted to real speakers' mouths (avatar.lips.rigfit, on pocketsphinx
# phone times of the 18 usable clips of the shared training footage; see the README "Lip
# sync", made by `avatar lips eval ../shared/train --folds 4 ...`, "rig refitted on all usable
# clips"): viseme [open, width] targets, how far the mouth runs ahead of the phone times (s),
# and a scale on the coarticulation time constants. The runtime rig uses it; the synthetic
# training targets of the audio model keep the design table.
REAL_FIT: dict | None = {
    "lead": 0.04, "tau_scale": 0.7,
    "targets": {
        "sil": (0.000, 0.000), "PBM": (0.000, -0.079), "FV": (0.000, -0.001), "TH": (0.042, -0.011),
        "TDN": (0.011, 0.016), "SH": (0.082, -0.045), "KG": (0.097, -0.004), "R": (0.095, -0.122),
        "L": (0.017, -0.100), "W": (0.000, -0.170), "Y": (0.092, 0.048), "H": (0.163, -0.043),
        "AA": (0.229, 0.007), "AE": (0.224, 0.042), "AH": (0.103, -0.003), "SCHWA": (0.176, 0.000),
        "EH": (0.146, 0.053), "IH": (0.087, 0.022), "EE": (0.050, 0.058), "AW": (0.103, -0.128),
        "OH": (0.039, -0.128), "OO": (0.033, -0.116), "ER": (0.025, -0.061), "NEUTRAL": (0.106, 0.000),
    },
}

MODIFIERS = set("ˈˌːˑ̩̃ʲʰ-")   # stress, length, syllabic, nasal, palatal, aspiration marks
SILENCE = set("_^$.,;:!?¡¿—–…\"'()[]{}") | {"", "sil", "pau"}
WORD_GAP = " "


def viseme_for(symbol: str) -> Viseme | None:
    """The viseme of one phoneme symbol; None for a word gap or a pure modifier (transparent)."""
    if symbol == WORD_GAP or (symbol and symbol.isspace()):
        return None
    core = "".join(c for c in symbol if c not in MODIFIERS)
    if not core:
        return None if symbol else VISEMES["sil"]
    if core in SILENCE or all(c in SILENCE for c in core):
        return VISEMES["sil"]
    name = PHONEME_VISEME.get(core) or PHONEME_VISEME.get(core[0]) or PHONEME_VISEME.get(core.lower())
    return VISEMES[name or "NEUTRAL"]


def is_stressed(symbol: str) -> bool:
    return "ˈ" in symbol
