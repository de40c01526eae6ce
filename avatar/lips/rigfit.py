"""Calibrate the phoneme rig (avatar.motion.rig, avatar.motion.visemes) on real mouths.

Phone times come from pocketsphinx's recognition of each real clip, force-aligned
(avatar.lips.real.Clip.phonemes); the targets are the clip's measured mouth in rig units
(avatar.lips.real.targets). The rig is linear in its viseme targets once the timing is
fixed (avatar.motion.rig.viseme_weights), so for each candidate timing (lead, and a
common scale on the coarticulation time constants) the opening and width targets of
every viseme are fitted by bounded, ridge-regularised least squares (scipy lsq_linear;
the ridge pulls towards the current table so a viseme seen in few frames keeps its
value), and the timing with the best mean r over the clips (opening and width) wins.
Last, the amplitudes (which r ignores, but the renderer shows) are scaled to the real
mouths' range (least squares on noisy phone times shrinks them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.lips import real as R

LEADS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14)
TAU_SCALES = (0.5, 0.7, 1.0, 1.4)
RIDGE = 3.0      # weight of the pull towards the current targets, in frames' worth of evidence


@dataclass
class RigFit:
    lead: float
    tau_scale: float
    targets: np.ndarray        # (len(VISEMES), 2) [open, width] in VISEMES order
    train_r: float             # mean r over the fitted clips (opening and width averaged)
    gains: tuple = (1.0, 1.0)  # amplitude scale applied after the fit (opening, width)

    def mouth(self, phonemes, n: int, fps: float) -> np.ndarray:
        return rig_mouth(phonemes, n, fps, self.lead, self.tau_scale, self.targets)

    def table(self) -> str:
        """The fitted viseme table as `name open width` lines (for avatar/motion/visemes.py)."""
        from avatar.motion.visemes import VISEMES

        rows = [f"lead {self.lead:.2f} s, coarticulation time constants x{self.tau_scale:g}, "
                f"amplitude gains {self.gains[0]:.2f} (opening), {self.gains[1]:.2f} (width)"]
        rows += [f"  {n:8s} open {o:.3f} width {w:+.3f}" for n, (o, w) in zip(VISEMES, self.targets)]
        return "\n".join(rows)


def rig_mouth(phonemes, n: int, fps: float, lead: float, tau_scale: float, targets: np.ndarray) -> np.ndarray:
    from avatar.motion import rig

    W, g_open, g_width = rig.viseme_weights(phonemes, n, fps, lead, rig.TAU_ANTICIPATE * tau_scale,
                                            rig.TAU_CARRY * tau_scale)
    m = W @ targets
    m[:, 0] = np.maximum(m[:, 0] * g_open, 0.0)
    m[:, 1] *= g_width
    return m.astype(np.float32)


def _design(clips, scales, lead, tau_scale):
    """Stacked per-frame rows for opening and width: (A_open, y_open, A_width, y_width)."""
    from avatar.motion import rig

    rows = {0: ([], []), 1: ([], [])}
    for c in clips:
        y = R.targets(c, scales[c.speaker])
        W, g_open, g_width = rig.viseme_weights(c.phonemes, c.frames, R.GRID_FPS, lead,
                                                rig.TAU_ANTICIPATE * tau_scale, rig.TAU_CARRY * tau_scale)
        for k, g in ((0, g_open), (1, g_width)):
            m = np.isfinite(y[:, k])
            # each clip weighs by its frames; its mean is removed (r ignores offsets)
            a = W[m] * g[m, None]
            rows[k][0].append(a - a.mean(axis=0))
            rows[k][1].append(y[m, k] - y[m, k].mean())
    return [(np.concatenate(rows[k][0]), np.concatenate(rows[k][1])) for k in (0, 1)]


def _solve(A, y, x0, lo, hi):
    from scipy.optimize import lsq_linear

    lam = np.sqrt(RIDGE * len(y) / max(1, A.shape[1]) / 100.0)
    A2 = np.vstack([A, lam * np.eye(A.shape[1])])
    y2 = np.concatenate([y, lam * x0])
    return lsq_linear(A2, y2, bounds=(lo, hi)).x


def _r(fit: RigFit, clip, scale) -> float:
    m, y = fit.mouth(clip.phonemes, clip.frames, R.GRID_FPS), R.targets(clip, scale)
    return 0.5 * (R.masked_r(m[:, 0], y[:, 0]) + R.masked_r(m[:, 1], y[:, 1]))


def fit(clips: list[R.Clip], scales: dict, leads=LEADS, tau_scales=TAU_SCALES) -> RigFit:
    """The best timing and viseme targets for these clips (see the module docstring)."""
    from avatar.motion.rig import viseme_targets
    from avatar.motion.visemes import VISEMES

    clips = [c for c in clips if c.phonemes]
    x0 = viseme_targets()
    sil = np.array([n == "sil" for n in VISEMES])
    best: RigFit | None = None
    for lead in leads:
        for ts in tau_scales:
            (Ao, yo), (Aw, yw) = _design(clips, scales, lead, ts)
            # opening in [0, 0.4] (silence stays closed), width in [-0.15, 0.15]
            o = _solve(Ao, yo, x0[:, 0], np.zeros(len(x0)), np.where(sil, 1e-9, 0.4))
            w = _solve(Aw, yw, x0[:, 1], np.where(sil, -1e-9, -0.15), np.where(sil, 1e-9, 0.15))
            cand = RigFit(lead, ts, np.stack([o, w], axis=1), 0.0)
            cand.train_r = float(np.mean([_r(cand, c, scales[c.speaker]) for c in clips]))
            if best is None or cand.train_r > best.train_r:
                best = cand
    return _match_amplitude(best, clips, scales)


def _match_amplitude(fit: RigFit, clips, scales) -> RigFit:
    """Least squares shrinks the targets (the phone times are noisy), which r does not see but the
    rendered mouth does: scale the opening targets so the rig's 95th percentile over the clips'
    usable frames matches the real one, and the width targets so its p5-p95 spread does."""
    rig = np.concatenate([fit.mouth(c.phonemes, c.frames, R.GRID_FPS) for c in clips])
    real = np.concatenate([R.targets(c, scales[c.speaker]) for c in clips])
    ok = np.isfinite(real).all(axis=1)
    rig, real = rig[ok], real[ok]
    g_open = np.percentile(real[:, 0], 95) / max(np.percentile(rig[:, 0], 95), 1e-6)
    spread = lambda x: np.percentile(x, 95) - np.percentile(x, 5)  # noqa: E731
    g_width = spread(real[:, 1]) / max(spread(rig[:, 1]), 1e-6)
    fit.targets = fit.targets * [g_open, g_width]
    fit.gains = (float(g_open), float(g_width))
    return fit
