"""The audio-to-mouth model: features, network, training, packaged checkpoint, metrics, hybrid."""
import numpy as np
import pytest

from avatar.motion import audio_model as AM
from avatar.motion import features as F
from avatar.lips.evaluate import lagged_r, pearson, sync_scores
from avatar.types import Phoneme


def _voiced(sr, seconds=1.3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    env = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    return (0.3 * env * np.sin(2 * np.pi * 140 * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_features_shape_and_resampling():
    a = _voiced(22050)
    f = F.model_features(a, 22050)
    n16 = len(F.to_model_rate(a, 22050))
    assert abs(n16 - len(a) * 16000 / 22050) <= 1
    assert f.shape == (n16 // F.HOP + 1, F.N_MELS) and np.isfinite(f).all()
    stereo = np.stack([a, a], axis=1)
    np.testing.assert_allclose(F.to_model_rate(stereo, 22050), F.to_model_rate(a, 22050), atol=1e-6)


def test_tiny_training_lowers_loss_and_is_reproducible(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from avatar.lips.train import TrainOptions, train

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))   # corpus cache in tmp
    common = dict(utterances=3, steps=40, batch=4, crop_seconds=1.5, lr=3e-3, channels=24, hidden=24,
                  progress=False, seed=3)
    res = train(TrainOptions(out=tmp_path / "a.safetensors", **common), log=lambda *a: None)
    losses = res["losses"]
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:8])
    assert (tmp_path / "a.json").is_file() and (tmp_path / "a.onnx").is_file()   # training exports the graph
    res2 = train(TrainOptions(out=tmp_path / "b.safetensors", **common), log=lambda *a: None)
    assert res2["losses"] == losses                    # same seed, same run
    model = AM.load_model(tmp_path / "a.safetensors")
    out = model.predict(_voiced(16000), 16000, 30, 25.0)
    assert out.shape == (30, 2) and np.isfinite(out).all()


@pytest.fixture(scope="module")
def model():
    return AM.load_model()


@pytest.mark.parametrize("fps", [24.0, 25.0, 29.97, 60.0])
def test_packaged_checkpoint_any_fps(model, fps):
    audio = _voiced(22050)
    n = int(round(1.3 * fps))
    out = model.predict(audio, 22050, n, fps)
    assert out.shape == (n, 2) and out.dtype == np.float32 and np.isfinite(out).all()
    assert out[:, 0].min() >= 0 and out[:, 0].max() < 0.6
    assert model.cfg.version == AM.FORMAT_VERSION
    assert 10_000 < model.n_params < 3_000_000


def test_packaged_checkpoint_opens_for_speech_closes_for_silence(model):
    sr = 16000
    speech = _voiced(sr, 2.0)
    audio = np.concatenate([np.zeros(sr, np.float32), speech, np.zeros(sr, np.float32)])
    out = model.predict(audio, sr, 100, 25.0)
    assert out[5:20, 0].mean() < 0.03                  # silence: closed
    assert out[30:70, 0].mean() > out[5:20, 0].mean() + 0.02


def test_inference_deterministic_and_chunking_exact(model):
    audio = _voiced(16000, 3.0, seed=1)
    a = model.predict(audio, 16000, 75, 25.0)
    b = model.predict(audio.copy(), 16000, 75, 25.0)
    assert np.array_equal(a, b)
    feats = F.model_features(audio, 16000)
    whole = model.track_features(feats, chunk_frames=100_000)
    for chunk in (1, 7, 37):
        np.testing.assert_allclose(model.track_features(feats, chunk_frames=chunk), whole, atol=1e-5)


def test_missing_or_mismatched_checkpoint_errors(tmp_path):
    pytest.importorskip("torch")
    from avatar.errors import AvatarError
    from avatar.lips import net as N

    with pytest.raises(AvatarError, match="not found"):
        N.load_network(tmp_path / "none.safetensors")
    with pytest.raises(AvatarError, match="not found"):
        AM.load_model(tmp_path / "none.safetensors")
    cfg = AM.LipConfig(channels=8, hidden=8)
    N.save_model(N.build_network(cfg), cfg, tmp_path / "m.safetensors")
    good = (tmp_path / "m.json").read_text()
    (tmp_path / "m.json").write_text(AM.LipConfig(channels=16, hidden=16).to_json())
    with pytest.raises(AvatarError, match="do not match"):
        N.load_network(tmp_path / "m.safetensors")
    with pytest.raises(AvatarError, match=r"m\.onnx.*does not match its config"):
        AM.load_model(tmp_path / "m.safetensors")
    (tmp_path / "m.json").write_text(cfg.to_json().replace(f'"version": {AM.FORMAT_VERSION}', '"version": 99'))
    with pytest.raises(AvatarError, match="format 99"):
        N.load_network(tmp_path / "m.safetensors")
    with pytest.raises(AvatarError, match="format 99"):
        AM.load_model(tmp_path / "m.safetensors")
    (tmp_path / "m.json").write_text(good)
    assert AM.load_model(tmp_path / "m.safetensors").cfg.channels == 8


def test_onnx_graph_must_come_from_its_checkpoint(tmp_path):
    """A graph exported from other weights (or none at all) is refused with a one-line error."""
    pytest.importorskip("torch")
    from avatar.errors import AvatarError
    from avatar.lips import net as N

    cfg = AM.LipConfig(channels=8, hidden=8)
    N.save_model(N.build_network(cfg), cfg, tmp_path / "a.safetensors")
    N.save_model(N.build_network(cfg), cfg, tmp_path / "b.safetensors")     # other random weights
    (tmp_path / "b.onnx").replace(tmp_path / "a.onnx")
    with pytest.raises(AvatarError, match=r"a\.onnx.*not exported from a\.safetensors.*avatar lips export"):
        AM.load_model(tmp_path / "a.safetensors")
    (tmp_path / "a.onnx").unlink()
    with pytest.raises(AvatarError, match="ONNX graph not found"):
        AM.load_model(tmp_path / "a.safetensors")
    (tmp_path / "a.onnx").write_bytes(b"not a graph")
    with pytest.raises(AvatarError, match="not a readable ONNX graph"):
        AM.load_model(tmp_path / "a.safetensors")
    assert N.export_onnx(tmp_path / "a.safetensors") == tmp_path / "a.onnx"
    assert AM.load_model(tmp_path / "a.safetensors").n_params > 0


def test_packaged_onnx_graph_equals_the_torch_network():
    """onnxruntime on the shipped lips.onnx == torch on lips.safetensors (random input, random state)."""
    torch = pytest.importorskip("torch")
    from avatar.lips import net as N

    net, cfg = N.load_network(AM.DEFAULT_WEIGHTS)
    model = AM.load_model.__wrapped__(AM.DEFAULT_WEIGHTS)          # uncached: the file on disk now
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, cfg.stack * (60 + 2 * cfg.context), cfg.n_mels)).astype(np.float32)
    h = rng.standard_normal((1, 2, cfg.hidden)).astype(np.float32)
    y, h2 = model.session.run(None, {"features": x, "state": h})
    with torch.inference_mode():
        yt, ht = net(torch.from_numpy(x), torch.from_numpy(h))
    assert y.shape == (2, 60, 2)
    np.testing.assert_allclose(y, yt.numpy(), atol=1e-4)
    np.testing.assert_allclose(h2, ht.numpy(), atol=1e-4)
    feats = rng.standard_normal((333, cfg.n_mels)).astype(np.float32)   # and through track_features' padding
    s, c = cfg.stack, cfg.context
    n = -(-len(feats) // s)
    padded = np.pad(feats, ((s * c, s * (n + c) - len(feats)), (0, 0)), mode="edge")
    with torch.inference_mode():
        want = net(torch.from_numpy(padded)[None])[0][0].numpy()
    np.testing.assert_allclose(model.track_features(feats, chunk_frames=40), want, atol=1e-4)


def test_audio_motion_runs_without_torch():
    """The core path (features -> onnxruntime -> hybrid -> idle) never imports torch."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from avatar.motion.audio_model import audio_motion\n"
            "from avatar.types import Speech\n"
            "sr = 16000; t = np.arange(sr) / sr\n"
            "m = audio_motion(Speech((0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), sr), 25.0)\n"
            "assert len(m) == 25, len(m)\n"
            "print('torch' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_measure_video_names_a_file_that_is_not_a_video(tmp_path):
    from avatar.errors import AvatarError
    from avatar.lips.evaluate import measure_video

    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(AvatarError, match=r"notes\.mp4.*not a readable video"):
        measure_video(bad)
    with pytest.raises(AvatarError, match=r"missing\.mp4.*video not found"):
        measure_video(tmp_path / "missing.mp4")


def _smooth_track(n, seed):
    rng = np.random.default_rng(seed)
    x = np.convolve(rng.standard_normal(n + 20), np.hanning(9), mode="same")[10:-10]
    return np.clip(x, 0, None)


def test_metrics_recover_known_track_and_reject_shuffled():
    real = _smooth_track(400, 0)
    s = sync_scores(real, real)
    assert s["r"] > 0.999 and s["best_lag"] == 0
    early = np.roll(real, -3)                # prediction 3 frames early
    s = sync_scores(early, real)
    assert s["best_lag"] == 3 and s["best_r"] > 0.98 and s["r"] < s["best_r"]
    assert lagged_r(early, real, 3) == pytest.approx(s["best_r"])
    shuffled = np.random.default_rng(1).permutation(real)
    assert abs(pearson(shuffled, real)) < 0.15
    assert abs(sync_scores(shuffled, real)["best_r"]) < 0.25


def test_measured_video_recovers_known_mouth_track(tmp_path, astronaut_path):
    """A clip rendered with a KNOWN mouth track, encoded, decoded and measured with MediaPipe."""
    pytest.importorskip("avatar.renderers.warp")
    import av

    from avatar.face import load_identity
    from avatar.lips.evaluate import measure_video
    from avatar.renderers.warp import WarpRenderer
    from avatar.types import Motion

    n, fps = 40, 25.0
    t = np.arange(n) / fps
    opening = 0.12 * np.clip(np.sin(2 * np.pi * 1.3 * t), 0, None) ** 1.5
    mouth = np.stack([opening, np.zeros(n)], axis=1)
    motion = Motion(fps, mouth, np.zeros((n, 3)), np.zeros(n), np.zeros(n))
    frames = list(WarpRenderer().frames(load_identity(astronaut_path), motion, crop=True))
    path = tmp_path / "known.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.height, s.width = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
        s.pix_fmt, s.options = "yuv420p", {"crf": "12"}
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: s.height, : s.width]), format="rgb24")))
        c.mux(s.encode())
    measured, got_fps = measure_video(path)
    assert got_fps == 25.0 and len(measured) == n
    assert sync_scores(measured[:, 0], opening)["r"] > 0.9
    assert measured[opening == 0, 0].max() < 0.02      # closed where the track is closed


def test_hybrid_forces_closures_and_silence():
    fps, n = 100.0, 100
    model_mouth = np.tile([0.15, 0.02], (n, 1)).astype(np.float32)
    phonemes = [Phoneme("_", 0.0, 0.2), Phoneme("ɑ", 0.2, 0.4), Phoneme("m", 0.4, 0.5),
                Phoneme("ɑ", 0.5, 0.7), Phoneme("_", 0.7, 1.0)]
    out = AM.hybrid_mouth(model_mouth, phonemes, n, fps)
    assert out.shape == (n, 2)
    assert out[45, 0] < 0.005                         # centre of the m
    assert np.allclose(out[28:33], model_mouth[28:33])  # vowel: the model's own value
    assert np.all(out[:10] == 0) and np.all(out[90:] == 0)   # silence: closed and relaxed
    early = AM.hybrid_mouth(model_mouth, phonemes, n, fps, lead=0.1)
    assert early[35, 0] < 0.005 and early[45, 0] > 0.1       # closure moved 100 ms earlier


def test_audio_motion_wraps_prediction(model):
    from avatar.types import Motion, Speech

    sr = 22050
    speech = Speech(_voiced(sr, 1.2), sr, phonemes=[Phoneme("_", 0, 0.5), Phoneme("m", 0.5, 0.65),
                                                    Phoneme("ɑ", 0.65, 1.0), Phoneme("_", 1.0, 1.2)])
    motion = AM.audio_motion(speech, 25.0, seed=1, still=True, model=model)
    assert isinstance(motion, Motion) and len(motion) == Motion.frame_count(1.2, 25.0)
    assert np.all(motion.head == 0)                    # still
    assert motion.mouth[:3, 0].max() == 0              # leading silence closed (hybrid)
    centre = int(round((0.575 - model.lead) * 25))     # the m, moved by the model's visual lead
    assert motion.mouth[centre, 0] < 0.01


# ----------------------------------------------------------------------------- real footage
def _fake_mesh(open_gap=0.1, width=0.5, yaw_deg=0.0):
    """A (478, 3) mesh with eye corners 100 px apart, the inner lips `open_gap` and the mouth
    corners `width` eye distances apart, turned `yaw_deg` about the vertical axis."""
    from avatar.face.measure import INNER_LIP, MOUTH_CORNERS
    from avatar.types import EYE_CORNERS

    lm = np.zeros((478, 3), np.float32)
    lm[EYE_CORNERS[0]], lm[EYE_CORNERS[1]] = (-50, 0, 0), (50, 0, 0)
    lm[INNER_LIP[0]], lm[INNER_LIP[1]] = (0, 80, 0), (0, 80 + 100 * open_gap, 0)
    lm[MOUTH_CORNERS[0]], lm[MOUTH_CORNERS[1]] = (-50 * width, 85, 0), (50 * width, 85, 0)
    a = np.radians(yaw_deg)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], np.float32)
    return lm @ rot.T + (200, 200, 0)


def test_mouth_raw_measures_in_eye_units_and_drops_lost_or_turned_faces():
    from avatar.face.measure import head_yaw, mouth_raw

    meshes = [_fake_mesh(0.1, 0.5), None, _fake_mesh(0.2, 0.6, yaw_deg=30), _fake_mesh(0.1, 0.5, yaw_deg=60)]
    raw, ok = mouth_raw(meshes)
    assert ok.tolist() == [True, False, True, False]
    np.testing.assert_allclose(raw[0], [0.1, 0.5], atol=1e-4)
    np.testing.assert_allclose(raw[2], [0.2, 0.6], atol=1e-4)      # 3-D: the 30 degree turn does not shrink it
    assert np.isnan(raw[1]).all() and np.isnan(raw[3]).all()
    assert abs(abs(head_yaw(_fake_mesh(yaw_deg=30))) - 30) < 0.5 and abs(head_yaw(_fake_mesh())) < 1e-3


def test_grid_resampling_follows_timestamps_of_a_variable_frame_rate():
    from avatar.lips.real import GRID_FPS, _to_grid

    times = np.cumsum(np.r_[0.0, np.where(np.arange(59) % 3 == 0, 0.06, 0.03)])   # irregular frames
    raw = np.stack([times, np.zeros_like(times)], axis=1).astype(np.float32)           # opening = time
    ok = np.ones(len(times), bool)
    ok[20] = False
    grid, good = _to_grid(times, raw, ok, duration=times[-1])
    t = np.arange(len(grid)) / GRID_FPS
    assert len(grid) == int(times[-1] * GRID_FPS) + 1
    np.testing.assert_allclose(grid[good, 0], t[good], atol=1e-5)
    nearest = np.abs(times[:, None] - t[None]).argmin(axis=0)
    assert np.array_equal(~good, nearest == 20)


def _clip(track_open, audio=None, speaker="a", name=None, phonemes=()):
    from avatar.lips.real import Clip

    n = len(track_open)
    raw = np.stack([track_open, 0.55 + 0.2 * track_open], axis=1).astype(np.float32)
    audio = audio if audio is not None else np.zeros(int(n / 25 * 16000), np.float32)
    return Clip(name or f"{speaker}.mp4", speaker, raw, np.ones(n, bool), audio, 16000, list(phonemes))


def test_speaker_scale_maps_rest_and_typical_maximum_to_rig_units():
    from avatar.lips import real as R

    track = np.abs(_smooth_track(500, 2)) * 0.3 + 0.01
    c = _clip(track)
    sc = R.SpeakerScale.fit([c])
    y = R.targets(c, sc)
    assert np.percentile(y[:, 0], 5) == pytest.approx(0.0, abs=1e-6)
    assert np.percentile(y[:, 0], 95) == pytest.approx(R.REF_OPEN, rel=1e-3)
    w5, w95 = np.percentile(y[:, 1], [5, 95])
    assert w95 - w5 == pytest.approx(R.REF_WIDTH, rel=1e-3)
    big = _clip(track * 3, speaker="b")                       # a bigger face or mouth, same motion
    np.testing.assert_allclose(R.targets(big, R.SpeakerScale.fit([big]))[:, 0], y[:, 0], atol=1e-5)


def test_offsets_found_when_two_references_agree_else_unclear():
    from avatar.lips import real as R

    rng = np.random.default_rng(0)
    truth = [_smooth_track(300, s) for s in range(5)]
    clips = [_clip(np.roll(t, lag), name=f"c{i}.mp4") for i, (t, lag) in enumerate(zip(truth, [0, 0, 1, 4, 0]))]
    refs = {"a": {c.name: t for c, t in zip(clips, truth)},
            "b": {c.name: np.roll(t, 1) for c, t in zip(clips, truth)}}     # b runs a frame late
    refs["b"]["c4.mp4"] = rng.standard_normal(300)                          # b knows nothing about c4
    rows = R.assign_offsets(clips, refs, log=lambda *a: None)
    assert [c.status for c in clips] == ["in sync", "in sync", "in sync", "corrected", "unclear"]
    assert clips[3].offset == 4 and rows[3]["offset"] == 4
    y = R.targets(clips[3], R.SpeakerScale.fit([clips[3]]))                 # corrected: lines up again
    assert R.scores(truth[3], y[:, 0])["best_lag"] == 0


def test_rig_fit_recovers_timing_and_targets_of_a_known_mouth():
    from avatar.lips import real as R
    from avatar.lips import rigfit
    from avatar.motion.rig import viseme_targets

    rng = np.random.default_rng(1)
    symbols = ["p", "ɑ", "t", "i", "m", "u", "s", "ɛ", "w", "ɔ", " "]
    clips = []
    true = viseme_targets() * [0.6, 1.5]
    for k in range(3):
        t, ph = 0.3, []
        while t < 7.5:
            d = float(rng.uniform(0.05, 0.2))
            ph.append(Phoneme(symbols[int(rng.integers(len(symbols)))], t, t + d))
            t += d
        n = 200
        y = rigfit.rig_mouth(ph, n, 25.0, 0.06, 0.7, true)
        c = _clip(y[:, 0], speaker=f"s{k}", phonemes=ph)
        c.raw[:, 1] = y[:, 1]
        clips.append(c)
    scales = R.speaker_scales(clips)
    fit = rigfit.fit(clips, scales, leads=(0.0, 0.06, 0.12), tau_scales=(0.7, 1.0))
    assert fit.lead == 0.06 and fit.tau_scale == 0.7 and fit.train_r > 0.97
    shipped = [R.masked_r(rigfit.rig_mouth(c.phonemes, c.frames, 25.0, 0.0, 1.0, viseme_targets())[:, 0],
                          c.raw[:, 0]) for c in clips]
    assert fit.train_r > np.mean(shipped) + 0.02


def test_real_augmentation_keeps_targets_on_the_audio_timeline():
    from avatar.lips import dataset as D
    from avatar.lips.real import masked_r

    track = np.stack([_smooth_track(100, 3), np.zeros(100)], axis=1).astype(np.float32)
    track[40] = np.nan
    t = np.array([-0.1, 0.0, 0.5, 1.02, 1.6, 3.96, 4.5])
    out = D.resample_track(track, 25.0, t)
    assert out[0, 0] == 0 and out[1, 0] == track[0, 0] and np.isnan(out[-1, 0])  # silence before, nothing after
    assert out[2, 0] == pytest.approx(0.5 * (track[12, 0] + track[13, 0]))
    assert np.isnan(out[4, 0]) and np.isfinite(out[5, 0])                     # next to the unusable frame 40
    # the track of a clip's loudness stays paired with the loudness of the augmented audio
    audio = _voiced(16000, 4.0, seed=4) * np.repeat(np.random.default_rng(2).uniform(0.1, 1, 40), 1600).astype(np.float32)
    e = F.model_features(audio, 16000).mean(axis=1)                         # 100 Hz frame j at t = j / 100
    loud = np.interp(np.arange(100) / 25, np.arange(len(e)) / 100, e)
    real = np.stack([loud, np.zeros(100)], axis=1).astype(np.float32)
    rng = np.random.default_rng(5)
    for _ in range(4):
        f, y = D.augment_real(audio, real, 25.0, rng)
        assert len(f) == 2 * len(y) and np.isfinite(f).all()
        energy = f.reshape(len(y), 2, -1).mean(axis=(1, 2))
        rs = [masked_r(np.roll(energy, L), y[:, 0]) for L in range(-4, 5)]
        assert int(np.argmax(rs)) == 4 and rs[4] > 0.3


def test_real_phase_trains_on_clips_and_is_reproducible(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from avatar.lips import net as N
    from avatar.lips.train import TrainOptions, train

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sr, n = 16000, 100
    audio = _voiced(sr, n / 25)
    env = np.abs(audio[: n * 640].reshape(n, 640)).mean(axis=1)
    clips = [_clip(env / env.max() * 0.2, audio=audio, speaker=s, name=f"{s}.mp4") for s in ("a", "b")]
    for c in clips:
        c.status = "in sync"
    clips[1].status = "unclear"
    init = tmp_path / "init.safetensors"
    cfg = AM.LipConfig(channels=16, hidden=16)
    N.save_model(N.build_network(cfg), cfg, init)
    common = dict(clips=clips, init=init, utterances=2, steps=30, batch=4, crop_seconds=1.5, real_lr=3e-3,
                  progress=False, seed=2)
    res = train(TrainOptions(out=tmp_path / "a.safetensors", **common), log=lambda *a: None)
    assert res["mode"] == "real + synthetic" and res["real"]["clips"] == ["a.mp4"]
    assert res["real"]["excluded"] == ["b.mp4"]
    assert np.mean(res["losses"][-6:]) < np.mean(res["losses"][:6])
    res2 = train(TrainOptions(out=tmp_path / "b.safetensors", **common), log=lambda *a: None)
    assert res2["losses"] == res["losses"]


def test_speaker_folds_never_split_a_speaker():
    from avatar.lips.evaluate import speaker_folds

    clips = [_clip(np.zeros(n), speaker=s, name=f"{s}{n}.mp4") for s, n in
             [("a", 300), ("a", 100), ("b", 250), ("c", 200), ("d", 150), ("e", 120)]]
    folds = speaker_folds(clips, 3)
    assert set(folds) == {"a", "b", "c", "d", "e"} and set(folds.values()) == {0, 1, 2}
    assert folds == speaker_folds(list(reversed(clips)), 3)


def test_lips_cli_errors_are_one_line(tmp_path, capsys):
    from avatar.cli import main

    for args, msg in ([["lips", "eval", str(tmp_path / "none")], "folder not found"],
                      [["lips", "eval", str(tmp_path)], "no video files"],
                      [["lips", "eval", str(tmp_path), "--folds", "1"], "--folds 1"],
                      [["lips", "train", "--real", str(tmp_path / "none")], "folder not found"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and msg in err, err


@pytest.mark.slow
def test_train_on_a_folder_of_talking_head_videos(tmp_path, astronaut_path, monkeypatch):
    """`avatar lips train --real DIR`: a clip rendered by our own pipeline (Piper + rig + warp),
    measured with MediaPipe, offsets checked, real phase run."""
    pytest.importorskip("avatar.renderers.warp")
    from avatar.face import load_identity
    pytest.importorskip("torch")
    from avatar.lips import net as N
    from avatar.motion import phoneme_motion
    from avatar.lips.train import TrainOptions, train
    from avatar.renderers.warp import WarpRenderer
    from avatar.script.models import VoiceSpec
    from avatar.speech.piper_voice import PiperVoice
    from avatar.video import write_mp4

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    speech = PiperVoice(VoiceSpec()).synthesize("Bob bought a map of Paris. Mary made a warm apple pie.")
    motion = phoneme_motion(speech, 25.0, still=True)
    frames = WarpRenderer().frames(load_identity(astronaut_path), motion, crop=True)
    folder = tmp_path / "clips"
    write_mp4(folder / "talk.mp4", frames, fps=25.0, audio=speech.audio, sample_rate=speech.sample_rate)
    init = tmp_path / "init.safetensors"
    res = train(TrainOptions(out=tmp_path / "ft.safetensors", real=folder, init=AM.DEFAULT_WEIGHTS,
                             utterances=2, steps=20, batch=4, crop_seconds=1.0, progress=False), log=lambda *a: None)
    assert res["mode"] == "real + synthetic"
    assert res["real"]["clips"] == ["talk.mp4"] and res["real"]["excluded"] == []


def test_auto_motion_runs_the_rig_on_recognised_phones_of_a_recording():
    from dataclasses import replace

    from avatar.motion import make_motion, phoneme_motion
    from avatar.script.models import AvatarSpec, VoiceSpec
    from avatar.speech.align import recognize
    from avatar.speech.piper_voice import PiperVoice
    from avatar.types import Speech

    spoken = PiperVoice(VoiceSpec()).synthesize("Bob bought a map of Paris.")
    recording = Speech(spoken.audio, spoken.sample_rate)            # no phonemes, no words
    spec = AvatarSpec(motion="auto", still=True)
    m = make_motion(recording, 25.0, spec)
    heard = replace(recording, phonemes=recognize(recording.audio, recording.sample_rate).phonemes)
    assert heard.phonemes
    np.testing.assert_array_equal(m.mouth, phoneme_motion(heard, 25.0, still=True).mouth)
    assert m.mouth[:, 0].max() > 0.05 and recording.words == []
    silent = Speech(np.zeros(16000, np.float32), 16000)             # nothing recognised: the audio model
    assert np.allclose(make_motion(silent, 25.0, spec).mouth, AM.audio_motion(silent, 25.0, still=True).mouth)
