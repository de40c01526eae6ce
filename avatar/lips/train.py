"""Train the audio-to-mouth model (`avatar lips train`).

Synthetic mode (default): Piper corpus of generated sentences (avatar.lips.dataset),
plus Festival voices where installed (avatar.lips.festival; `voices`), rig targets,
heavy augmentation, from scratch.

Real mode (`--real DIR`): (1) the synthetic training above (`pretrain_steps`, cached in
the user cache by its options); (2) each clip of DIR measured with MediaPipe and its A/V
offset checked against that model and the phoneme rig (avatar.lips.real; unclear clips
left out); (3) a real phase of `steps` steps in which every batch holds `real_share`
augmented crops of the real clips (targets: the measured mouth in rig units, per
speaker scale) and synthetic crops (rehearsal, so the model keeps what it learnt about
voices the real footage lacks). Seeded and reproducible on one thread; writes
safetensors + JSON atomically, never into the installed package unless told to (-o).

Visual lead of the synthetic targets: the rig's mouth at phoneme times moved `lead`
seconds earlier (0.12 s, chosen on the AOC clip for the synthetic-only checkpoint);
real targets carry the real speakers' own lead.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar.motion import audio_model as AM
from avatar.lips import dataset as D
from avatar.lips import net as N
from avatar.lips import real as R


@dataclass
class TrainOptions:
    out: Path = AM.DEFAULT_WEIGHTS
    real: Path | None = None          # folder of real talking-head clips (avatar.lips.real): real + synthetic
    clips: list | None = None         # or: real clips already loaded, offsets set (cross-validation)
    init: Path | None = None          # start from this checkpoint (no synthetic pre-training)
    utterances: int = 1000            # synthetic corpus size (Piper utterances of 1-3 sentences)
    voices: list[str] | None = None   # "piper" and/or Festival voices (slt, kal, kd); None: all available
    steps: int = 2000                 # optimizer steps (synthetic mode; with real clips: the real phase)
    pretrain_steps: int = 2000        # with real clips and no init: synthetic pre-training steps (cached)
    real_share: float = 0.5           # share of each batch drawn from the real clips (real phase)
    batch: int = 16
    crop_seconds: float = 4.0         # training window
    lr: float = 2e-3                  # peak learning rate (one-cycle cosine schedule)
    real_lr: float = 5e-4             # peak learning rate of the real phase
    lead: float = 0.12                # s the mouth leads the sound in the synthetic targets (visual lead)
    kernels: tuple[int, ...] = (13, 3, 3)  # conv kernels: look-ahead = sum((k - 1) // 2) = 8 frames of 20 ms
    channels: int = 128
    hidden: int = 128
    seed: int = 0
    threads: int = 1                  # torch CPU threads
    cache: bool = True                # cache the synthetic corpus and pre-training in the user cache
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


def _synthetic_items(opts: TrainOptions, corpus: list[D.Utterance], rng: np.random.Generator, frames: int, k: int):
    return [D.crop(*D.augment(corpus[int(rng.integers(len(corpus)))], rng, lead=opts.lead), frames, rng)
            for _ in range(k)]


def _real_items(examples, rng: np.random.Generator, frames: int, k: int):
    """k random crops of augmented real clips; unusable frames masked out."""
    items = []
    span = int(np.ceil((frames / AM.MODEL_RATE * 1.25 + 0.2) * R.GRID_FPS))   # enough for any speed-up
    for _ in range(k):
        audio, track = examples[int(rng.integers(len(examples)))]
        if len(track) > span:              # augment only a window around the crop (long clips)
            s0 = int(rng.integers(0, len(track) - span + 1))
            a0 = int(s0 / R.GRID_FPS * D.F.SAMPLE_RATE)
            audio, track = audio[a0: a0 + int(span / R.GRID_FPS * D.F.SAMPLE_RATE)], track[s0: s0 + span]
        f, t, m = D.crop(*D.augment_real(audio, track, R.GRID_FPS, rng), frames, rng)
        good = np.isfinite(t).all(axis=1)
        items.append((f, np.where(good[:, None], t, 0.0).astype(np.float32), m * good))
    return items


def _batches(opts, rng, frames, corpus, examples=None):
    k_real = round(opts.batch * opts.real_share) if examples else 0
    while True:
        items = _real_items(examples, rng, frames, k_real) if k_real else []
        items += _synthetic_items(opts, corpus, rng, frames, opts.batch - k_real)
        yield [np.stack(x) for x in zip(*items)]


def real_examples(clips) -> list[tuple[np.ndarray, np.ndarray]]:
    """(16 kHz audio, (T, 2) targets at GRID_FPS in rig units, offset applied) per clip; speaker scales
    from these clips; clips whose offset is unclear are left out."""
    scales = R.speaker_scales(clips)
    return [(D.F.to_model_rate(c.audio, c.sample_rate), R.targets(c, scales[c.speaker]))
            for c in clips if c.status != "unclear"]


def _corpus(opts: TrainOptions, log):
    voices = D.corpus_voices(opts.voices, log)
    parts = D.mixed_corpus(opts.utterances, voices, seed=opts.seed, cache=opts.cache,
                           progress=_status(log, "synthesising corpus") if opts.progress else None)
    corpus = [u for part in parts.values() for u in part]
    per_voice = {v: {"utterances": len(p), "minutes": round(sum(len(u.audio) for u in p) / D.F.SAMPLE_RATE / 60, 1)}
                 for v, p in parts.items()}
    minutes = sum(len(u.audio) for u in corpus) / D.F.SAMPLE_RATE / 60
    log(f"corpus: {len(corpus)} utterances, {minutes:.1f} min of speech ("
        + ", ".join(f"{v} {d['utterances']} / {d['minutes']} min" for v, d in per_voice.items()) + ")")
    return corpus, {"utterances": len(corpus), "minutes": round(minutes, 1), "voices": per_voice}


def _optimise(opts: TrainOptions, net, cfg, batches, steps: int, lr: float, log, what: str) -> list[float]:
    import torch

    ctx = cfg.context * cfg.stack      # the context frames the 'valid' convolutions eat: pad every crop
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps),
                                                pct_start=0.1, anneal_strategy="cos")
    losses: list[float] = []
    bar = _bar(opts, log, what, steps)
    t0 = time.time()
    for step in range(steps):
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
            log(f"{what} step {step + 1}/{steps}: loss {np.mean(losses[-250:]):.4f} ({time.time() - t0:.0f} s)")
    bar(None, None)
    net.eval()
    return losses


def _pretrained(opts: TrainOptions, corpus, log):
    """(net, cfg) after the synthetic phase, cached in the user cache by everything that shapes it."""
    import hashlib
    import json

    key = hashlib.sha1(json.dumps({k: getattr(opts, k) for k in (
        "utterances", "voices", "pretrain_steps", "batch", "crop_seconds", "lr", "lead", "kernels",
        "channels", "hidden", "seed")} | {"v": 1}, default=str).encode()).hexdigest()[:12]
    path = D.cache_dir() / f"pretrained-{key}.safetensors"
    if opts.cache and path.is_file():
        log(f"synthetic pre-training: cached {path}")
        return N.load_network(path)
    sub = TrainOptions(**{**opts.__dict__, "real": None, "clips": None, "steps": opts.pretrain_steps,
                          "out": path, "init": None})
    train(sub, log=log, corpus=corpus)
    return N.load_network(path)


def prepare_clips(folder: Path, reference, log=print) -> tuple[list, list[dict]]:
    """Clips of `folder` with their A/V offsets set from `reference` (an AudioMotionModel) and the rig."""
    clips = R.load_folder(folder, log=log)
    rows = R.assign_offsets(clips, R.offset_references(clips, reference), log=log)
    return clips, rows


def train(opts: TrainOptions, log=print, corpus=None) -> dict:
    """Train and save; returns a summary dict (loss, steps, seconds, ...).

    Without real clips: synthetic corpus, from scratch (or from `init`). With real clips
    (`real` folder or `clips`): synthetic pre-training (cached; skipped when `init` is given),
    A/V offsets of the clips from that model, then the real phase: batches of `real_share`
    real crops and synthetic crops (rehearsal), `steps` steps at `real_lr`."""
    import torch

    torch.set_num_threads(max(1, opts.threads))
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    t0 = time.time()
    frames = int(opts.crop_seconds * AM.MODEL_RATE)
    if corpus is None:
        corpus, data = _corpus(opts, log)
    else:
        data = {"utterances": len(corpus), "minutes": round(sum(len(u.audio) for u in corpus) / D.F.SAMPLE_RATE / 60, 1)}
    with_real = opts.real is not None or opts.clips is not None
    if opts.init is not None:
        net, cfg = N.load_network(opts.init)
    elif with_real:
        net, cfg = _pretrained(opts, corpus, log)
    else:
        cfg = AM.LipConfig(channels=opts.channels, hidden=opts.hidden, kernels=tuple(opts.kernels))
        net = N.build_network(cfg)
    if with_real:
        clips, offsets = (opts.clips, None) if opts.clips is not None else \
            prepare_clips(opts.real, AM.AudioMotionModel(N.TorchSession(net), cfg), log)
        examples = real_examples(clips)
        if not examples:
            from avatar.errors import AvatarError
            raise AvatarError("no real clip with a clear audio/video offset", path=opts.real,
                              hint="use clips whose audio is the speaker's own voice")
        used = [c for c in clips if c.status != "unclear"]
        log(f"real phase: {len(used)} clips ({sum(c.frames for c in used) / R.GRID_FPS / 60:.1f} min) of "
            f"{len({c.speaker for c in used})} speakers, {opts.real_share:.0%} of each batch")
        batches = _batches(opts, rng, frames, corpus, examples)
        losses = _optimise(opts, net, cfg, batches, opts.steps, opts.real_lr, log, "real")
        data = {"synthetic": data, "real": {
            "clips": [c.name for c in used], "speakers": len({c.speaker for c in used}),
            "minutes": round(sum(c.frames for c in used) / R.GRID_FPS / 60, 2),
            "excluded": [c.name for c in clips if c.status == "unclear"],
            "offsets": {c.name: c.offset for c in used if c.offset}},
            "pretrain_steps": opts.pretrain_steps if opts.init is None else None,
            "real_share": opts.real_share, "real_lr": opts.real_lr}
        mode = "real + synthetic"
    else:
        batches = _batches(opts, rng, frames, corpus)
        losses = _optimise(opts, net, cfg, batches, opts.steps, opts.lr, log, "synthetic")
        mode = "synthetic"
    seconds = time.time() - t0
    cfg.info = {
        "mode": mode, "init": str(Path(opts.init).name) if opts.init else None, **data,
        "lead": opts.lead, "kernels": list(cfg.kernels), "steps": opts.steps, "batch": opts.batch,
        "crop_seconds": opts.crop_seconds, "lr": opts.lr, "seed": opts.seed, "threads": opts.threads,
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


def _bar(opts: TrainOptions, log, what: str, steps: int):
    """A rich progress bar with the running loss; callable(step, loss); (None, None) closes it."""
    if not opts.progress:
        return lambda step, loss: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn())
    prog.start()
    task = prog.add_task("train", total=steps, loss="-")

    def update(step, loss):
        if step is None:
            prog.stop()
            return
        prog.update(task, completed=step, loss=f"{loss:.4f}")

    return update
