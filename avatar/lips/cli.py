"""`avatar lips ...`: train and evaluate the audio-to-lips model (mounted by avatar.cli)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

lips_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       rich_markup_mode=None, help="Train and evaluate the audio-to-lips model.")


@lips_app.command()
def train(
    out: Optional[Path] = typer.Option(None, help="Output .safetensors (default: the packaged avatar/data/lips.safetensors)."),
    video: List[Path] = typer.Option([], "--video", help="Talking-head video to fine-tune on (repeatable)."),
    init: Optional[Path] = typer.Option(None, help="Start from this checkpoint (default with --video: the packaged one)."),
    utterances: int = typer.Option(1000, help="Synthetic corpus size in Piper utterances (Festival voices add 2/3 as many on top: 40% of the corpus)."),
    voices: str | None = typer.Option(None, help="Comma-separated speakers: piper,slt,kal,kd "
                                                    "(default: piper + every installed Festival voice)."),
    steps: Optional[int] = typer.Option(None, help="Optimizer steps (default 2000; 300 with --video)."),
    batch: int = typer.Option(16, help="Batch size."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (default 2e-3; 3e-4 with --video)."),
    lead: float = typer.Option(0.12, help="Seconds the mouth leads the sound in the synthetic targets."),
    lookahead: int = typer.Option(8, help="Model look-ahead in 20 ms frames (convolution context)."),
    seed: int = typer.Option(0, help="Random seed (same seed, same model)."),
    threads: int = typer.Option(1, help="Torch CPU threads."),
):
    """Train on a synthetic Piper (+ Festival) corpus (default) or fine-tune on real videos (--video)."""
    from avatar.errors import AvatarError
    from avatar.lips.net import require_torch
    from avatar.motion.audio_model import DEFAULT_WEIGHTS

    require_torch()
    from avatar.lips.train import TrainOptions, train as run

    for v in video:
        if not v.is_file():
            raise AvatarError("video not found", path=v, field="--video")
    steps = steps if steps is not None else (300 if video else 2000)
    lr = lr if lr is not None else (3e-4 if video else 2e-3)
    opts = TrainOptions(out=out or DEFAULT_WEIGHTS, videos=list(video), init=init, utterances=utterances,
                        voices=voices.split(",") if voices is not None else None,
                        steps=steps, batch=batch, lr=lr, seed=seed, threads=threads, lead=lead,
                        kernels=_kernels(lookahead))
    res = run(opts, log=typer.echo)
    typer.echo(f"loss {res['first_loss']} -> {res['final_loss']}; {res['seconds']} s; wrote {res['out']}")


@lips_app.command()
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


@lips_app.command("eval")
def evaluate(
    video: Path = typer.Option(..., "--video", help="Real talking-head video (with its own audio)."),
    transcript: Optional[str] = typer.Option(None, help="What is said: adds the phoneme-rig and hybrid scores."),
    rendered_with: Optional[Path] = typer.Option(None, "--rendered-with",
                                                 help="Photo: also render the motion and measure the rendered mouth."),
    model: Optional[Path] = typer.Option(None, help="Checkpoint to evaluate (default: the packaged one)."),
    json_out: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
):
    """Pearson r (lag 0 and best lag) of predicted vs MediaPipe-measured mouth opening."""
    import json

    from avatar.errors import AvatarError
    from avatar.lips.evaluate import evaluate_video, format_report

    if not video.is_file():
        raise AvatarError("video not found", path=video, field="--video")
    res = evaluate_video(video, transcript=transcript, rendered_with=rendered_with, model_path=model)
    typer.echo(json.dumps(res, indent=2) if json_out else format_report(res))
