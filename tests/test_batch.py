"""Batch: template + rows -> one video per row; shared scenes render once; validation; resume; Ray."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from avatar.build.batch import BatchInvalid, Template, batch, output_name, read_rows
from avatar.errors import AvatarError
from media import video_md5  # tests/media.py

# 1 personalised scene (the row's name and photo) + 2 scenes no placeholder touches
TEMPLATE = """\
title: "{{company}} welcome"
size: 160x90
fps: 8
transition: cut
captions: {burn: false}
avatar: {layout: none}
scenes:
  - narration: Hi {{name}}. [pause 0.2s] Welcome.
    pause_after: 0.1
    avatar: {layout: pip, size: 0.6, photo: "{{photo}}", motion: phonemes, still: true}
  - slide: {layout: title, title: Welcome}
    narration: Glad you are here.
    pause_after: 0.1
  - slide: {layout: bullets, title: Next, bullets: [Read the guide]}
    narration: Bye.
    pause_after: 0.1
"""
ROWS = [("Alice", "Acme", "faces/a.png"), ("Bob", "Acme", "faces/a.png"), ("Carol", "Beta", "faces/a.png")]


def _setup(folder: Path, rows=ROWS, template: str = TEMPLATE,
           columns=("name", "company", "photo")) -> tuple[Path, Path]:
    from PIL import Image

    from avatar.resources import default_photo

    (folder / "data" / "faces").mkdir(parents=True, exist_ok=True)
    shutil.copy(default_photo(), folder / "data" / "faces" / "a.png")
    Image.new("RGB", (200, 200), "gray").save(folder / "data" / "faces" / "blank.png")   # no face in it
    tpl = folder / "welcome.yaml"
    tpl.write_text(template)
    rows_path = folder / "data" / "rows.csv"   # row paths are relative to this folder, not the template's
    with open(rows_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(rows)
    return tpl, rows_path


def _problems(*args, **kw) -> list[str]:
    with pytest.raises(BatchInvalid) as e:
        batch(*args, check=True, **kw)
    return e.value.problems


# --------------------------------------------------------------------------- validation (nothing renders)
def test_placeholder_without_column_names_template_line_and_column(tmp_path):
    tpl, rows = _setup(tmp_path, template=TEMPLATE.replace("Hi {{name}}", "Hi {{nme}}"))
    problems = _problems(tpl, rows, tmp_path / "out")
    assert len(problems) == 1
    assert "welcome.yaml:8" in problems[0] and "scenes[0].narration" in problems[0]
    assert "{{nme}}" in problems[0] and "did you mean 'name'" in problems[0]
    assert not (tmp_path / "out").exists()


def test_row_problems_name_row_and_column(tmp_path):
    rows = [("Alice", "Acme", "faces/a.png"), ("", "Acme", "faces/missing.png"),
            ("Carol", "Beta", "faces/a.png"), ("Carol", "Beta", "faces/a.png")]
    tpl, rows_path = _setup(tmp_path, rows, columns=("name", "company", "photo"))
    problems = _problems(tpl, rows_path, tmp_path / "out", name="{{company}}-{{name}}")
    assert len(problems) == 3, problems
    empty, missing, dup = problems
    assert "rows.csv:3: row 2, column 'name'" in empty and "no value" in empty and "--optional name" in empty
    assert "rows.csv:3: row 2, column 'photo'" in missing and str(tmp_path / "data/faces/missing.png") in missing
    assert "rows.csv:5: row 4" in dup and "'Beta-Carol'" in dup and "row 3" in dup
    assert all("\n" not in p for p in problems)
    # an optional column may be empty
    tpl2, rows2 = _setup(tmp_path / "opt", [("", "Acme", "faces/a.png")])
    assert batch(tpl2, rows2, tmp_path / "o2", optional=["name"], check=True).rows[0].status == "ok"


def test_unused_column_is_a_warning(tmp_path):
    tpl, rows = _setup(tmp_path, [r + ("x",) for r in ROWS], columns=("name", "company", "photo", "email"))
    result = batch(tpl, rows, tmp_path / "out", check=True)
    assert [r.status for r in result] == ["ok"] * 3
    assert len(result.warnings) == 1 and "'email'" in result.warnings[0]
    assert result.scenes_requested == 9 and result.scenes_distinct == 5


def test_row_names_cannot_escape_outdir(tmp_path):
    names = ["../../x", "/etc/passwd", "a/b\\c", "..", "CON", " spaced  out "]
    rows = [(n, "Acme", "faces/a.png") for n in names]
    tpl, rows_path = _setup(tmp_path, rows)
    out = tmp_path / "out"
    problems = _problems(tpl, rows_path, out, name="{{name}}")
    assert len(problems) == 1 and "row 4" in problems[0] and "empty file name" in problems[0]   # ".."
    del rows[3]
    tpl, rows_path = _setup(tmp_path, rows)
    result = batch(tpl, rows_path, out, name="{{name}}", check=True)
    outputs = [r.output for r in result]
    assert all("/" not in o and "\\" not in o and not o.startswith(".") for o in outputs), outputs
    assert all((out / o).resolve().parent == out.resolve() for o in outputs)
    assert len(set(outputs)) == len(outputs)
    assert outputs == ["x.mp4", "etc-passwd.mp4", "a-b-c.mp4", "CON_.mp4", "spaced out.mp4"]
    assert output_name("../../x") == "x" and output_name("..") == "" and output_name("Acme/Bob") == "Acme-Bob"
    # default: the row number
    assert [r.output for r in batch(tpl, rows_path, out, check=True)] == [f"{i}.mp4" for i in range(1, 6)]


def test_fill_keeps_markup_and_never_evaluates_row_values(tmp_path):
    tpl_path, rows = _setup(tmp_path)
    tpl = Template(tpl_path)
    assert {p.field: sorted(p.columns) for p in tpl.placeholders} == {
        "title": ["company"], "scenes[0].narration": ["name"], "scenes[0].avatar.photo": ["photo"]}
    values = {"name": "{{ 7 * 7 }} [next]", "company": "Acme", "photo": "faces/a.png"}
    deck = tpl.deck(values, tmp_path / "data")
    assert deck.scenes[0].narration == "Hi {{ 7 * 7 }} [next]. [pause 0.2s] Welcome."   # literal, markup kept
    assert deck.title == "Acme welcome"
    assert deck.scenes[0].avatar.photo == (tmp_path / "data/faces/a.png").resolve()
    # the template itself is sandboxed
    evil = TEMPLATE.replace("Hi {{name}}", "Hi {{ name.__class__.__mro__ }}")
    tpl2, rows2 = _setup(tmp_path / "evil", template=evil)
    problems = _problems(tpl2, rows2, tmp_path / "o")
    assert len(problems) == 3 and all("unsafe" in p and "column 'name'" in p for p in problems)


def test_template_mistakes_are_one_line_errors(tmp_path):
    cases = {
        'title: {{company}}\n': ["welcome.yaml:1", "title", "quotes"],
        'voice: {preset: "{{voice}}"}\n': ["welcome.yaml:1", "voice.preset", "filled only"],
        'title: "{{ company }"\n': ["welcome.yaml:1", "title", "template syntax"],
    }
    for i, (head, needles) in enumerate(cases.items()):
        tpl, rows = _setup(tmp_path / str(i), template=head + TEMPLATE.split("\n", 1)[1])
        with pytest.raises(AvatarError) as e:
            batch(tpl, rows, tmp_path / "out", check=True)
        assert all(n in str(e.value) for n in needles), (head, str(e.value))
    # code slides keep their own braces
    code = TEMPLATE + "  - slide: {layout: code, code: 'x = \"{{not_a_column}}\"'}\n    narration: Code.\n"
    tpl, rows = _setup(tmp_path / "code", template=code)
    assert batch(tpl, rows, tmp_path / "out", check=True).scenes_requested == 12


def test_rows_files(tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_text('{"name": "Alice", "n": 3}\n\n{"name": "Bob", "n": null}\n')
    cols, rows = read_rows(p)
    assert cols == ["name", "n"] and [(r.number, r.line, r.values["name"]) for r in rows] == [(1, 1, "Alice"),
                                                                                             (2, 3, "Bob")]
    p.write_text('{"name": "Alice"}\n{"name": [1]}\n')
    with pytest.raises(AvatarError, match=r"rows.jsonl:2: row 2, column 'name'"):
        read_rows(p)
    c = tmp_path / "rows.csv"
    c.write_text("name,company\nAlice,Acme,extra\n")
    with pytest.raises(AvatarError, match=r"rows.csv:2: .*3 cells"):
        read_rows(c)
    with pytest.raises(AvatarError, match="rows file not found"):
        read_rows(tmp_path / "none.csv")


# --------------------------------------------------------------------------- rendering
@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch")
    tpl, rows = _setup(tmp)
    out, cache = tmp / "out", tmp / "cache"
    events = []
    result = batch(tpl, rows, out, name="{{company}}-{{name}}", jobs=1, cache_dir=cache, on_progress=events.append)
    return tmp, tpl, rows, out, cache, result, events


def test_shared_scenes_render_once(made):
    from avatar.build.cache import SceneCache
    from avatar.video import probe

    tmp, tpl, rows, out, cache, result, events = made
    assert [(r.status, r.output) for r in result] == [("rendered", "Acme-Alice.mp4"), ("rendered", "Acme-Bob.mp4"),
                                                     ("rendered", "Beta-Carol.mp4")]
    assert (result.scenes_requested, result.scenes_distinct, result.scenes_rendered) == (9, 5, 5)   # 3 + 2, not 9
    assert SceneCache(cache).info().segments == 5
    for r in result:
        info = probe(out / r.output)
        assert (info["width"], info["height"]) == (160, 90) and info["duration"] > 1.5
        assert (out / r.output).with_suffix(".vtt").read_text().startswith("WEBVTT")
    assert "Hi Bob." in (out / "Acme-Bob.srt").read_text()
    assert probe(out / "Beta-Carol.mp4")["tags"]["title"].startswith("Beta welcome")
    with open(out / "report.csv") as f:
        report = list(csv.DictReader(f))
    assert [(r["row"], r["status"], r["output"], r["error"]) for r in report] == [
        ("1", "rendered", "Acme-Alice.mp4", ""), ("2", "rendered", "Acme-Bob.mp4", ""),
        ("3", "rendered", "Beta-Carol.mp4", "")]
    assert all(float(r["seconds"]) > 0 for r in report)
    last = {e.stage: e for e in events}
    assert (last["rows"].done, last["rows"].total, last["scenes"].done, last["scenes"].total) == (3, 3, 5, 5)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and not p.name.endswith(".plan.json")]


def test_rerun_skips_unchanged_rows(made):
    tmp, tpl, rows, out, cache, first, _ = made
    again = batch(tpl, rows, out, name="{{company}}-{{name}}", jobs=1, cache_dir=cache)
    assert [r.status for r in again] == ["unchanged"] * 3 and again.scenes_rendered == 0
    changed = tmp / "data" / "rows2.csv"
    changed.write_text(rows.read_text().replace("Bob,", "Bo,"))
    third = batch(tpl, changed, out, name="{{company}}-{{name}}", jobs=1, cache_dir=cache)
    assert [r.status for r in third] == ["unchanged", "rendered", "unchanged"]
    assert (third.scenes_requested, third.scenes_cached, third.scenes_rendered) == (3, 2, 1)


def test_failing_row_is_reported_and_the_others_finish(made, capsys):
    from avatar.cli import main

    tmp, tpl, _, _, cache, _, _ = made
    rows = tmp / "data" / "mixed.csv"
    rows.write_text("name,company,photo\nAlice,Acme,faces/a.png\nDave,Acme,faces/blank.png\nErin,Beta,faces/a.png\n")
    out = tmp / "mixed"
    with pytest.raises(SystemExit) as e:
        main(["batch", str(tpl), str(rows), "-o", str(out), "--name", "{{name}}", "--jobs", "2",
              "--cache-dir", str(cache), "-q"])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "failed: row 2: scene 1" in err and "no face" in err
    with open(out / "report.csv") as f:
        report = {r["row"]: r for r in csv.DictReader(f)}
    assert report["1"]["status"] == report["3"]["status"] == "rendered"
    assert report["2"]["status"] == "failed" and "no face" in report["2"]["error"] and report["2"]["output"] == ""
    assert sorted(p.name for p in out.glob("*.mp4")) == ["Alice.mp4", "Erin.mp4"]
    assert not list(out.glob(".*.mp4"))   # no temporary (half-written) video left behind


def test_ray_executor_gives_the_same_videos(made):
    ray = pytest.importorskip("ray", reason="Ray is the optional extra [cluster]")
    tmp, tpl, rows, out, _, local, _ = made
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2 ** 20)
    try:
        result = batch(tpl, rows, tmp / "ray", name="{{company}}-{{name}}", executor="ray",
                       cache_dir=tmp / "ray-cache")   # its own cache: every scene renders in a Ray task
    finally:
        ray.shutdown()
    assert [r.status for r in result] == ["rendered"] * 3 and result.scenes_rendered == 5
    for r in local:
        assert video_md5(tmp / "ray" / r.output) == video_md5(out / r.output), r.output
    assert json.loads((tmp / "ray" / ".Acme-Bob.plan.json").read_text())["scenes"] == \
        json.loads((out / ".Acme-Bob.plan.json").read_text())["scenes"]
