"""`avatar lips ...`: train and evaluate the audio-to-lips model (mounted by avatar.cli)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from avatar.clikit import command

lips_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       rich_markup_mode=None, help="Train and evaluate the audio-to-lips model.")


def _default_out() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("avatar")) / "lips.safetensors"


@command(parent=lips_app)
def train(
    out: Optional[Path] = typer.Option(None, "-o", "--out",
                                       help="Output .safetensors (default: lips.safetensors in the user data folder; "
                                            "never the installed package)."),
    real: Optional[Path] = typer.Option(None, "--real", help="Folder of real talking-head clips with their own speech: "
                                                             "synthetic pre-training, then real + synthetic."),
    init: Optional[Path] = typer.Option(None, help="Start from this checkpoint (skips the synthetic pre-training)."),
    utterances: int = typer.Option(1000, help="Synthetic corpus size in Piper utterances (Festival voices add 2/3 as many on top: 40% of the corpus)."),
    voices: str | None = typer.Option(None, help="Comma-separated speakers: piper,slt,kal,kd "
                                                    "(default: piper + every installed Festival voice)."),
    steps: Optional[int] = typer.Option(None, help="Optimizer steps (default 2000; with --real: 600 real-phase steps)."),
    pretrain_steps: int = typer.Option(2000, help="With --real: synthetic pre-training steps (cached in the user cache)."),
    real_share: float = typer.Option(0.5, help="With --real: share of each batch that is real footage."),
    batch: int = typer.Option(16, help="Batch size."),
    lr: float = typer.Option(2e-3, help="Peak learning rate of the synthetic training."),
    real_lr: float = typer.Option(5e-4, help="Peak learning rate of the real phase."),
    lead: float = typer.Option(0.12, help="Seconds the mouth leads the sound in the synthetic targets."),
    lookahead: int = typer.Option(8, help="Model look-ahead in 20 ms frames (convolution context)."),
    seed: int = typer.Option(0, help="Random seed (same seed, same model)."),
    threads: int = typer.Option(1, help="Torch CPU threads."),
):
    """Train on a synthetic Piper (+ Festival) corpus, and with --real on real footage too."""
    from avatar.errors import AvatarError
    from avatar.lips.net import require_torch

    require_torch()
    from avatar.lips.train import TrainOptions, train as run

    if real is not None and not real.is_dir():
        raise AvatarError("folder not found", path=real, field="--real", hint="give a folder of talking-head videos")
    if not 0.0 < real_share <= 1.0:
        raise AvatarError(f"{real_share}: use a share in (0, 1]", field="--real-share")
    steps = steps if steps is not None else (600 if real else 2000)
    opts = TrainOptions(out=out or _default_out(), real=real, init=init, utterances=utterances,
                        voices=voices.split(",") if voices is not None else None,
                        steps=steps, pretrain_steps=pretrain_steps, real_share=real_share, batch=batch,
                        lr=lr, real_lr=real_lr, seed=seed, threads=threads, lead=lead,
                        kernels=_kernels(lookahead))
    res = run(opts, log=typer.echo)
    typer.echo(f"loss {res['first_loss']} -> {res['final_loss']}; {res['seconds']} s; wrote {res['out']}")


@command(parent=lips_app)
def export(checkpoint: Path = typer.Argument(..., help="Checkpoint .safetensors (with its .json config beside it).")):
    """Write CHECKPOINT.onnx, the graph the runtime runs with onnxruntime (training does this itself)."""
    from avatar.errors import AvatarError
    from avatar.lips.net import export_onnx, require_torch

    require_torch()
    try:
        typer.echo(f"wrote {export_onnx(checkpoint)}")
    except OSError as e:
        raise AvatarError(f"cannot write the ONNX graph ({e.strerror or e})", path=checkpoint.with_suffix(".onnx"),
                          hint="export a copy of the checkpoint in a folder you can write to") from None


def _kernels(lookahead: int) -> tuple[int, ...]:
    """Three odd kernels whose (k - 1) / 2 sum to `lookahead` (>= 3)."""
    from avatar.errors import AvatarError

    if not 3 <= lookahead <= 30:
        raise AvatarError(f"--lookahead {lookahead}: use 3 to 30 frames of 20 ms")
    a = lookahead - 2          # first kernel takes the rest: (2a+1, 3, 3)
    return (2 * a + 1, 3, 3) if lookahead != 5 else (5, 5, 3)


@command(name="eval", parent=lips_app)
def evaluate(
    folder: Path = typer.Argument(..., help="Folder of real talking-head clips (each with its own speech)."),
    model: Optional[Path] = typer.Option(None, help="Checkpoint to score (default: the packaged one)."),
    previous: Optional[Path] = typer.Option(None, help="Another checkpoint to score beside it."),
    reference: Optional[Path] = typer.Option(None, help="Checkpoint whose prediction sets each clip's A/V offset "
                                                        "(default: --model)."),
    folds: int = typer.Option(0, help="k > 1: k-fold cross-validation by speaker (trains a model and refits the "
                                      "rig per fold; training options as `avatar lips train --real`)."),
    fractions: str = typer.Option("1", help="With --folds: shares of each fold's training clips, e.g. 0.25,0.5,1 "
                                            "(data curve)."),
    utterances: int = typer.Option(1000, help="With --folds: synthetic corpus size."),
    steps: int = typer.Option(600, help="With --folds: real-phase steps per fold."),
    pretrain_steps: int = typer.Option(2000, help="With --folds: synthetic pre-training steps (cached)."),
    real_share: float = typer.Option(0.5, help="With --folds: real share of each batch."),
    seed: int = typer.Option(0, help="With --folds: random seed."),
    threads: int = typer.Option(1, help="With --folds: torch CPU threads."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
):
    """Per clip and median: r at lag 0, r at the best lag and the best lag of mouth opening and width,
    for the audio model(s), the RMS envelope and the phoneme rig (pocketsphinx phones)."""
    import json

    from avatar.errors import AvatarError
    from avatar.files import write_text
    from avatar.lips.evaluate import cross_validate, evaluate_folder, format_table

    if not folder.is_dir():
        raise AvatarError("folder not found", path=folder, hint="give a folder of talking-head videos")
    if folds == 1 or folds < 0:
        raise AvatarError(f"--folds {folds}: use 0 (no training) or at least 2")
    if folds:
        from avatar.lips.train import TrainOptions

        try:
            fr = tuple(float(x) for x in fractions.split(","))
        except ValueError:
            raise AvatarError(f"{fractions!r}: give shares such as 0.25,0.5,1", field="--fractions") from None
        if 1.0 not in fr or not all(0 < f <= 1 for f in fr):
            raise AvatarError(f"{fractions!r}: shares in (0, 1], including 1", field="--fractions")
        opts = TrainOptions(utterances=utterances, steps=steps, pretrain_steps=pretrain_steps,
                            real_share=real_share, seed=seed, threads=threads, progress=False)
        res = cross_validate(folder, opts, folds=folds, fractions=fr, previous_path=previous or model, log=typer.echo)
        rows = res["rows"]
        typer.echo(format_table(rows, title=f"{folder}: {folds}-fold cross-validation by speaker "
                                            "(every figure on speakers held out of its training)"))
        typer.echo("\ndata curve (audio model, median over held-out clips)")
        for f, med in sorted(res["curve"].items()):
            _curve_line(typer.echo, f, med)
        from avatar.lips.evaluate import medians
        _curve_line(typer.echo, 1.0, medians(rows, ["new"]))
        typer.echo("\nrig refitted on all usable clips (for avatar/motion/visemes.py):\n" + res["rig_fit_all"].table())
        payload = {"rows": rows, "curve": {str(k): v for k, v in res["curve"].items()},
                   "curve_rows": {str(k): v for k, v in res["curve_rows"].items()}, "offsets": res["offsets"],
                   "folds": res["folds"], "rig_fit_all": {"lead": res["rig_fit_all"].lead,
                   "tau_scale": res["rig_fit_all"].tau_scale, "targets": res["rig_fit_all"].targets.tolist()},
                   "rig_fits": [{"lead": f.lead, "tau_scale": f.tau_scale} for f in res["rig_fits"]]}
    else:
        rows = evaluate_folder(folder, model, previous, reference, log=typer.echo)
        typer.echo(format_table(rows, title=f"{folder}: {len(rows)} clips"))
        payload = {"rows": rows}
    if json_out:
        write_text(json_out, json.dumps(payload, indent=1, default=float))
        typer.echo(f"wrote {json_out}")


def _curve_line(echo, frac: float, med: dict) -> None:
    o, w = med.get("new", {}).get("open"), med.get("new", {}).get("width")
    if o:
        echo(f"  {frac:4.0%} of the training clips: open r0 {o['r']:+.3f} best {o['best_r']:+.3f} |lag| {o['abs_lag']:.1f}"
             + (f"; width r0 {w['r']:+.3f} best {w['best_r']:+.3f} |lag| {w['abs_lag']:.1f}" if w else ""))
