"""Batch: one YAML template + a table of rows -> one personalised video per row.

    result = batch("welcome.yaml", "people.csv", "out/", name="{{company}}-{{name}}")
    for row in result: print(row.row, row.status, row.output, row.error)

The steps:
 1. rows       CSV (header row; .tsv too) or JSONL (one object a line) -> one dict per row
 2. fill       each row fills the template's {{placeholders}} (Jinja2 sandbox, StrictUndefined) in
               its text fields and chosen path fields, in the YAML data before it is validated, so
               errors keep the template's file:line; a path filled from a row is relative to the
               ROWS file's folder
 3. validate   every row is filled, validated and planned before anything renders; each problem is
               one line naming the row and the column; any problem stops the batch here (--check)
 4. dedup      all rows' scene plans together: identical plans (a scene no placeholder touches)
               render once, and scenes already in the cache not at all
 5. render     distinct scenes on a local process pool (default) or as Ray tasks (ray_executor)
 6. join       per row, as soon as its scenes are ready: OUTDIR/NAME.mp4 + .srt/.vtt (atomic set),
               then a sidecar .NAME.plan.json with the row's plan digest (a rerun skips the row
               while its output exists and that digest is unchanged)
 7. report     OUTDIR/report.csv: row, status, output, seconds, error (rewritten as rows finish)

A row that fails while rendering (no face in its photo, an image that does not decode) is
reported and the other rows still finish.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

from avatar.errors import AvatarError
from avatar.progress import ProgressCallback, report

log = logging.getLogger("avatar")

ROWS_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
REPORT_NAME = "report.csv"
REPORT_COLUMNS = ("row", "status", "output", "seconds", "error")

# Where placeholders are filled (data paths of one YAML file before its paths are resolved; "*" = any index)
TEXT_FIELDS = {("title",), ("scenes", "*", "narration"),
               *(("scenes", "*", "slide", f) for f in ("title", "subtitle", "text", "quote", "author")),
               *(("scenes", "*", "slide", f, "*") for f in ("bullets", "left", "right"))}
PATH_FIELDS = {("avatar", "photo"), ("scenes", "*", "avatar", "photo"), ("scenes", "*", "slide", "image"),
               ("theme", "logo")}
LITERAL_FIELDS = {("scenes", "*", "slide", "code")}   # code may hold {{ }} of its own: never filled
_MARKERS = ("{{", "{%", "{#")


# --------------------------------------------------------------------------- results
@dataclass
class ReportRow:
    row: int                    # 1-based data row of the rows file
    status: str                 # rendered | unchanged | failed (--check: ok | unchanged)
    output: str = ""            # file name in OUTDIR ("" when failed)
    seconds: float = 0.0        # this row's share of the compute: each scene's render time divided
                                # among the rows that use it, plus its own join
    error: str = ""


@dataclass
class BatchResult:
    rows: list[ReportRow]
    outdir: Path
    report: Path | None                 # OUTDIR/report.csv (None with check=True)
    scenes_requested: int = 0           # scene slots of the rows made this run
    scenes_distinct: int = 0            # distinct plans among them
    scenes_cached: int = 0              # of those, already in the cache
    scenes_rendered: int = 0            # rendered now
    scenes_failed: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    scene_seconds: dict[str, float] = field(default_factory=dict)   # key -> its render time (worker side)
    join_seconds: dict[int, float] = field(default_factory=dict)    # row -> its join time

    def __iter__(self) -> Iterator[ReportRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def failed(self) -> list[ReportRow]:
        return [r for r in self.rows if r.status == "failed"]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    def summary(self) -> str:
        made = self.count("rendered") or self.count("ok")
        verb = "written" if self.report else "ready to render"
        scenes = (f"scenes: {self.scenes_requested} requested, {self.scenes_distinct} distinct, "
                  f"{self.scenes_cached} cached, {self.scenes_rendered} rendered"
                  + (f", {self.scenes_failed} failed" if self.scenes_failed else ""))
        where = f"; report {self.report}" if self.report else ""
        return (f"{made} video(s) {verb}, {self.count('unchanged')} unchanged, {len(self.failed)} failed "
                f"({scenes}) in {self.seconds:.1f} s{where}")


class BatchInvalid(AvatarError):
    """Problems found before rendering: `problems` holds one line each."""

    def __init__(self, problems: list[str]):
        more = f" (and {len(problems) - 1} more problem(s); `avatar batch --check` lists them all)" \
            if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")
        self.problems = problems


# --------------------------------------------------------------------------- rows
@dataclass
class Row:
    number: int                 # 1-based
    line: int                   # where it is in the rows file
    values: dict[str, Any]


def read_rows(path: Path) -> tuple[list[str], list[Row]]:
    """(columns, rows) of a CSV/TSV (header row) or JSONL (one object a line) file."""
    suffix = path.suffix.lower()
    if suffix not in ROWS_SUFFIXES and suffix not in JSONL_SUFFIXES:
        raise AvatarError("rows must be a .csv, .tsv or .jsonl file", path=path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise AvatarError("rows file not found", path=path) from None
    except UnicodeDecodeError as e:
        raise AvatarError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path) from None
    except OSError as e:
        raise AvatarError(f"cannot read the rows: {e.strerror or e}", path=path) from None
    cols, rows = _jsonl(text, path) if suffix in JSONL_SUFFIXES else _csv(text, path, ROWS_SUFFIXES[suffix])
    if not rows:
        raise AvatarError("no rows", path=path, hint="one row per video after the header")
    return cols, rows


def _csv(text: str, path: Path, delimiter: str) -> tuple[list[str], list[Row]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise AvatarError("the first line must name the columns", path=path, line=1)
        cols = [h.strip() for h in header]
        for c in cols:
            if not c:
                raise AvatarError("a column has no name", path=path, line=1)
            if cols.count(c) > 1:
                raise AvatarError(f"column {c!r} appears twice", path=path, line=1)
        rows = []
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue                                   # blank line
            if len(cells) > len(cols):
                raise AvatarError(f"row {len(rows) + 1} has {len(cells)} cells but the header names {len(cols)}",
                                  path=path, line=line, hint="quote a value that holds the delimiter")
            cells += [""] * (len(cols) - len(cells))
            rows.append(Row(len(rows) + 1, line, dict(zip(cols, cells))))
    except csv.Error as e:
        raise AvatarError(f"CSV syntax error: {e}", path=path, line=reader.line_num) from None
    return cols, rows


def _jsonl(text: str, path: Path) -> tuple[list[str], list[Row]]:
    cols: list[str] = []
    rows = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise AvatarError(f"not JSON: {e.msg} (column {e.colno})", path=path, line=n) from None
        if not isinstance(obj, dict):
            raise AvatarError("each line must be one JSON object of column: value", path=path, line=n)
        for k, v in obj.items():
            if not (v is None or isinstance(v, (str, int, float, bool))):
                raise AvatarError("values must be text, numbers or true/false", path=path, line=n,
                                  field=f"row {len(rows) + 1}, column {k!r}")
            if k not in cols:
                cols.append(k)
        rows.append(Row(len(rows) + 1, n, obj))
    return cols, rows


# --------------------------------------------------------------------------- templates
@lru_cache(maxsize=1)
def _env():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    # the sandbox refuses attribute tricks (''.__class__ ...); nothing in a row is ever evaluated
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=4096)
def _compile(source: str):
    """(compiled template, the variables it uses). Raises jinja2.TemplateSyntaxError."""
    from jinja2 import meta

    env = _env()
    return env.from_string(source), frozenset(meta.find_undeclared_variables(env.parse(source)))


def _matches(path: tuple, patterns: set) -> bool:
    return any(len(p) == len(path) and all(a == "*" and isinstance(b, int) or a == b for a, b in zip(p, path))
               for p in patterns)


def _has_markers(value: str) -> bool:
    return any(m in value for m in _MARKERS)


@dataclass
class Placeholder:
    file: str
    line: int
    field: str
    kind: str                   # "text" | "path"
    columns: frozenset


def _walk(data: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _walk(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _walk(v, path + (i,))
    else:
        yield path, data


def _set(data: Any, path: tuple, value: Any) -> None:
    for k in path[:-1]:
        data = data[k]
    if value is None:
        del data[path[-1]]
    else:
        data[path[-1]] = value


class Template:
    """A YAML template with {{placeholders}}: where they are, and the decks it makes for rows."""

    def __init__(self, path: Path):
        from avatar.script.yaml_loader import load_tree

        self.path = Path(path)
        if self.path.suffix.lower() not in (".yaml", ".yml"):
            raise AvatarError("a batch template must be a YAML file (.yaml)", path=self.path)
        self.placeholders: list[Placeholder] = []
        load_tree(self.path, {}, fill=self._scan)

    @property
    def columns(self) -> set[str]:
        return {c for p in self.placeholders for c in p.columns}

    def _scan(self, data: dict, locs: dict, file: str) -> None:
        from jinja2 import TemplateSyntaxError

        from avatar.script.build import field_name, where

        for path, value in _walk(data):
            at = where(locs, path, (file, 1))
            if path and isinstance(path[-1], str) and path[-1].startswith("ordereddict(") and value is None:
                raise AvatarError("a value that starts with {{ must be in quotes (YAML reads { as a mapping)",
                                  path=at[0], line=at[1], field=field_name(path[:-1]),
                                  hint='e.g. title: "{{company}} update"')
            if not isinstance(value, str) or not _has_markers(value) or _matches(path, LITERAL_FIELDS):
                continue
            kind = "text" if _matches(path, TEXT_FIELDS) else "path" if _matches(path, PATH_FIELDS) else None
            if kind is None:
                raise AvatarError("placeholders are filled only in text fields (title, narration, slide "
                                  "title/subtitle/text/bullets/left/right/quote/author) and in avatar.photo, "
                                  "slide.image and theme.logo", path=at[0], line=at[1], field=field_name(path))
            try:
                _, cols = _compile(value)
            except TemplateSyntaxError as e:
                raise AvatarError(f"template syntax: {e.message}", path=at[0], line=at[1],
                                  field=field_name(path)) from None
            self.placeholders.append(Placeholder(at[0], at[1], field_name(path), kind, cols))

    def deck(self, values: dict, rows_dir: Path):
        """The validated Presentation for one row (AvatarError on the first problem)."""
        from avatar.script.build import build
        from avatar.script.yaml_loader import load_tree

        texts: dict[str, str] = {}
        data, locs = load_tree(self.path, texts, fill=lambda d, l, f: _fill(d, values, rows_dir))
        return build(data, locs, self.path.resolve(), (str(self.path), 1), texts)


class RowProblem(AvatarError):
    """A problem with one row's values; `columns` are the ones that gave it."""

    def __init__(self, message: str, columns=(), hint: str | None = None):
        super().__init__(message, hint=hint)
        self.message, self.columns = message, sorted(columns)


def _fill(data: dict, values: dict, rows_dir: Path) -> None:
    """Render every placeholder of one file's data with one row's values (in place)."""
    from avatar.script.build import field_name

    for path, value in list(_walk(data)):
        if not isinstance(value, str) or not _has_markers(value) or _matches(path, LITERAL_FIELDS):
            continue
        tpl, cols = _compile(value)
        text = _render(tpl, values, field_name(path), cols)
        if _matches(path, PATH_FIELDS):
            text = text.strip()
            if text:   # relative to the rows file (made absolute here, so the loader keeps it)
                p = Path(text).expanduser()
                p = p if p.is_absolute() else (rows_dir / p).resolve()
                if not p.is_file():
                    raise RowProblem(f"{field_name(path)}: {'is a folder' if p.is_dir() else 'file not found'}: {p}",
                                     cols, hint="a relative path in a row is relative to the rows file's folder")
                text = str(p)
            _set(data, path, text or None)   # an empty path: the field is not set
        else:
            _set(data, path, text)


def _render(tpl, values: dict, where: str, cols=()) -> str:
    from jinja2 import TemplateError

    try:
        return tpl.render(values)
    except TemplateError as e:   # UndefinedError (e.g. {{name.first}}), SecurityError
        raise RowProblem(f"{where}: {e.message or e}", cols) from None


def _columns_hint(column: str, columns: list[str]) -> str:
    from avatar.script.build import did_you_mean

    return did_you_mean(column, columns) or f"columns: {', '.join(columns)}"


# --------------------------------------------------------------------------- names
def output_name(text: str) -> str:
    """A safe file name (no folders, no leading dots, no reserved names); '' when nothing is left."""
    from pathvalidate import sanitize_filename

    name = sanitize_filename(" ".join(text.split()), replacement_text="-", platform="universal", max_len=200)
    return name.strip(" .-")


def _finish(deck) -> dict:
    """What a row's join needs for the final mix (music beds, loudness) and chapters, with the
    content digest of every music bed (so an edited bed joins the row again)."""
    from avatar.build.finish import music_files
    from avatar.build.plan import file_digest

    return {"deck": deck.model_dump(mode="json"), "source": str(deck.source) if deck.source else None,
            "beds": {str(p): file_digest(p) for p in sorted(music_files(deck))}}


def _inside(outdir: Path, name: str) -> Path:
    out = (outdir / f"{name}.mp4").resolve()
    if out.parent != outdir.resolve():   # belt and braces: output_name() already removed separators
        raise AvatarError(f"output {name!r} would be outside {outdir}")
    return out


# --------------------------------------------------------------------------- preparing
@dataclass
class RowJob:
    row: Row
    out: Path
    plans: list                 # [ScenePlan]
    title: str
    captions: dict              # CaptionSpec (JSON)
    finish: dict                # the filled deck (JSON) and its source: the final mix and chapters at the join

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.plans]

    def digest(self) -> str:
        """The row's plan: its scene keys and everything its join reads."""
        text = json.dumps({"scenes": self.keys, "title": self.title, "captions": self.captions,
                           "finish": self.finish}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    @property
    def sidecar(self) -> Path:
        return self.out.with_name(f".{self.out.stem}.plan.json")

    def unchanged(self) -> bool:
        try:
            return self.out.is_file() and json.loads(self.sidecar.read_text())["plan"] == self.digest()
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def to_dict(self) -> dict:
        return {"row": self.row.number, "out": str(self.out), "keys": self.keys, "title": self.title,
                "captions": self.captions, "finish": self.finish}


def prepare(template: Path, rows_path: Path, outdir: Path, *, name: str | None = None, optional=(),
            options: dict | None = None) -> tuple[list[RowJob], list[str]]:
    """Fill, validate and plan every row: (jobs, warnings). Raises BatchInvalid listing every problem."""
    from jinja2 import TemplateSyntaxError

    from avatar.api import apply_options
    from avatar.build.plan import _Digests, plan

    tpl = Template(template)
    columns, rows = read_rows(rows_path)
    rows_dir = rows_path.resolve().parent
    problems: list[str] = []
    where = str(rows_path)
    try:
        name_tpl, name_cols = _compile(name) if name else (None, frozenset())
    except TemplateSyntaxError as e:
        raise AvatarError(f"template syntax: {e.message}", field="--name") from None
    # the template against the columns (once)
    for p in tpl.placeholders:
        for c in sorted(p.columns - set(columns)):
            problems.append(str(AvatarError(f"placeholder {{{{{c}}}}} has no column in {rows_path.name}",
                                            path=p.file, line=p.line, field=p.field, hint=_columns_hint(c, columns))))
    for c in sorted(name_cols - set(columns)):
        problems.append(str(AvatarError(f"placeholder {{{{{c}}}}} has no column in {rows_path.name}",
                                        field="--name", hint=_columns_hint(c, columns))))
    for c in sorted(set(optional) - set(columns)):
        problems.append(str(AvatarError(f"no column {c!r} in {rows_path.name}", field="--optional")))
    if problems:
        raise BatchInvalid(problems)
    used = tpl.columns | name_cols
    warnings = [str(AvatarError(f"column {c!r} is not used by any placeholder", path=where, line=1))
                for c in columns if c not in used]
    for w in warnings:
        log.warning(w)
    required: dict[str, list[str]] = {}
    for p in tpl.placeholders:
        for c in p.columns - set(optional):
            required.setdefault(c, []).append(p.field)
    for c in name_cols - set(optional):
        required.setdefault(c, []).append("--name")

    digests = _Digests()   # each input file hashed once for the whole batch
    width = len(str(len(rows)))
    jobs: list[RowJob] = []
    seen: dict[str, int] = {}
    for row in rows:
        def problem(msg: str, columns=(), hint: str | None = None) -> None:
            named = ", ".join(repr(c) for c in columns)
            fld = f"row {row.number}" + (f", column{'s' if len(columns) > 1 else ''} {named}" if columns else "")
            problems.append(str(AvatarError(msg, path=where, line=row.line, field=fld, hint=hint)))

        values = {k: "" if v is None else v for k, v in row.values.items()}
        empty = [c for c in required if str(values.get(c, "")).strip() == ""]
        for c in empty:
            problem(f"no value, but {', '.join(sorted(set(required[c])))} uses it", [c],
                    hint=f"give every row a value, or --optional {c}")
        try:
            deck = apply_options(tpl.deck(values, rows_dir), **(options or {}))
            if empty:   # the other columns were checked; the empty ones would only repeat their problem
                continue
            plans = plan(deck, digests)
            label = _render(name_tpl, values, "--name", name_cols) if name_tpl else f"{row.number:0{width}d}"
        except RowProblem as e:
            if not set(e.columns) & set(empty):
                problem(e.message, e.columns, e.hint)
            continue
        except AvatarError as e:   # found by the loader or the planner: names the template's file:line
            if not empty:
                problem(str(e))
            continue
        fname = output_name(label)
        if not fname:
            problem(f"--name gives an empty file name ({label!r})", hint="use columns that hold letters or digits")
            continue
        first = seen.setdefault(fname.casefold(), row.number)
        if first != row.number:
            problem(f"output name {fname!r} is also row {first}'s", hint="make --name unique, e.g. add a column")
            continue
        jobs.append(RowJob(row, _inside(outdir, fname), plans, deck.title, deck.captions.model_dump(mode="json"),
                           _finish(deck)))
    if problems:
        raise BatchInvalid(problems)
    return jobs, warnings


# --------------------------------------------------------------------------- workers (local pool and Ray)
def _one_line(e: BaseException) -> str:
    text = str(e) if isinstance(e, AvatarError) else f"{type(e).__name__}: {e}"
    return " ".join(text.split())


def render_scene(plan_json: str, cache_root: str) -> dict:
    """Worker: one plan -> its segment in the cache. {"info", "seconds"} or {"error", "seconds"}."""
    from avatar.build.run import render_plan

    t0 = time.perf_counter()
    try:
        return {"info": render_plan(plan_json, cache_root), "seconds": time.perf_counter() - t0}
    except Exception as e:   # one scene's failure fails its rows, never the batch
        return {"error": _one_line(e), "seconds": time.perf_counter() - t0}


def join_row(job: dict, cache_root: str, *scenes: dict) -> dict:
    """Worker: one row's segments (from the cache) -> OUTDIR/NAME.mp4 + .srt/.vtt, as one atomic set.

    scenes: the render_scene results of the row's scenes that were rendered this run."""
    from avatar.build.assemble import assemble
    from avatar.build.cache import SceneCache
    from avatar.build.finish import finishing
    from avatar.script.models import CaptionSpec, Presentation

    errors = [s["error"] for s in scenes if "error" in s]
    if errors:
        return {"error": errors[0], "seconds": 0.0}
    t0 = time.perf_counter()
    try:
        cache = SceneCache(cache_root)
        infos = []
        for key in job["keys"]:
            info = cache.get(key)
            if info is None:
                raise AvatarError(f"scene {key} is not in the cache {cache_root}",
                                  hint="on a cluster the cache folder must be storage every worker shares")
            infos.append(info)
        deck = Presentation.model_validate(job["finish"]["deck"])
        if job["finish"]["source"]:
            deck = deck.model_copy(update={"source": Path(job["finish"]["source"])})
        assemble([cache.segment(k) for k in job["keys"]], infos, Path(job["out"]), title=job["title"],
                 captions=CaptionSpec.model_validate(job["captions"]), **finishing(deck, infos, cache.root))
    except Exception as e:
        return {"error": _one_line(e), "seconds": time.perf_counter() - t0}
    return {"seconds": time.perf_counter() - t0}


def _run_local(todo: dict, jobs: list[RowJob], cache_root: str, workers: int,
               on_scene: Callable[[str, dict], None], on_row: Callable[[RowJob, dict], None]) -> None:
    """Distinct scenes on a process pool (or in this process); each row joined here once its scenes are done."""
    waiting = {id(j): {k for k in j.keys if k in todo} for j in jobs}
    results: dict[str, dict] = {}

    def finished(key: str | None, result: dict | None) -> None:
        if key is not None:
            results[key] = result
            on_scene(key, result)
        for j in jobs:
            left = waiting.get(id(j))
            if left is None:
                continue
            left.discard(key)
            if not left:
                del waiting[id(j)]
                on_row(j, join_row(j.to_dict(), cache_root, *[results[k] for k in j.keys if k in todo]))

    finished(None, None)   # rows whose scenes are all cached
    if workers <= 1:
        for key, p in todo.items():
            finished(key, render_scene(p.to_json(), cache_root))
        return
    from concurrent.futures import as_completed

    from avatar.build.run import worker_pool

    with worker_pool(workers) as ex:
        futs = {ex.submit(render_scene, p.to_json(), cache_root): k for k, p in todo.items()}
        for f in as_completed(futs):
            try:
                result = f.result()
            except Exception as e:   # the worker process died (BrokenProcessPool, out of memory)
                result = {"error": _one_line(e), "seconds": 0.0}
            finished(futs[f], result)


# --------------------------------------------------------------------------- the batch
def write_report(path: Path, rows: list[ReportRow]) -> None:
    from avatar.files import write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REPORT_COLUMNS)
    for r in sorted(rows, key=lambda r: r.row):
        w.writerow([r.row, r.status, r.output, f"{r.seconds:.2f}", r.error])
    write_text(path, buf.getvalue())


def batch(template: str | Path, rows: str | Path, outdir: str | Path, *, name: str | None = None,
          optional=(), executor: str = "local", jobs: int | None = None, ray_address: str | None = None,
          check: bool = False, cache: bool = True, cache_dir: str | Path | None = None,
          on_progress: ProgressCallback | None = None, **options) -> BatchResult:
    """One video per row of ROWS (CSV/TSV/JSONL) from TEMPLATE (YAML with {{placeholders}}) in OUTDIR.

    name: output file names ("{{company}}-{{name}}"; default: the row number); optional: columns
    that may be empty; executor: "local" (process pool, `jobs` processes; None: one per core as
    memory allows) or "ray" (ray.init(num_cpus=jobs) here, or the cluster at `ray_address`);
    check: validate and plan only; options: size, fps, preview, badge (as avatar.render)."""
    from avatar.build.cache import SceneCache, cache_root
    from avatar.build.run import default_jobs, pending

    t0 = time.perf_counter()
    if executor not in ("local", "ray"):
        raise AvatarError(f"unknown executor {executor!r}", field="executor", hint="local or ray")
    outdir, rows_path = Path(outdir), Path(rows)
    if outdir.exists() and not outdir.is_dir():
        raise AvatarError("is a file, not a folder", path=outdir, hint="-o names the output folder")
    todo_jobs, warnings = prepare(Path(template), rows_path, outdir, name=name, optional=optional, options=options)
    store = SceneCache(cache_root(cache_dir))
    unchanged = {id(j) for j in todo_jobs if cache and j.unchanged()}
    report_rows = {id(j): ReportRow(j.row.number, "unchanged", j.out.name) for j in todo_jobs if id(j) in unchanged}
    work = [j for j in todo_jobs if id(j) not in unchanged]
    plans = [p for j in work for p in j.plans]
    done, todo = pending(plans, store, cache)
    result = BatchResult([], outdir, None if check else outdir / REPORT_NAME, len(plans), len(done) + len(todo),
                         len(done), warnings=warnings)
    if check:
        result.rows = [report_rows.get(id(j)) or ReportRow(j.row.number, "ok", j.out.name) for j in todo_jobs]
        result.seconds = time.perf_counter() - t0
        return result

    outdir.mkdir(parents=True, exist_ok=True)
    users: dict[str, int] = {}
    for j in work:
        for k in set(j.keys):
            users[k] = users.get(k, 0) + 1
    scene_seconds = result.scene_seconds
    n_rows, n_scenes = len(todo_jobs), len(done) + len(todo)
    cached = f"{len(done)} cached" if done else ""

    def rows_label() -> str:
        failed = sum(r.status == "failed" for r in report_rows.values())
        return ", ".join(x for x in (f"{len(unchanged)} unchanged" if unchanged else "",
                                     f"{failed} failed" if failed else "") if x)

    def on_scene(key: str, res: dict) -> None:
        scene_seconds[key] = res.get("seconds", 0.0)
        if "error" in res:
            result.scenes_failed += 1
        else:
            result.scenes_rendered += 1
        report(on_progress, "scenes", len(done) + result.scenes_rendered + result.scenes_failed, n_scenes, cached)

    def on_row(job: RowJob, res: dict) -> None:
        from avatar.files import write_text

        share = sum(scene_seconds.get(k, 0.0) / users[k] for k in set(job.keys))
        result.join_seconds[job.row.number] = res.get("seconds", 0.0)
        seconds = share + res.get("seconds", 0.0)
        if "error" in res:
            row = ReportRow(job.row.number, "failed", "", seconds, res["error"])
        else:
            write_text(job.sidecar, json.dumps({"row": job.row.number, "plan": job.digest(), "scenes": job.keys}))
            row = ReportRow(job.row.number, "rendered", job.out.name, seconds)
        report_rows[id(job)] = row
        write_report(result.report, list(report_rows.values()))
        report(on_progress, "rows", len(report_rows), n_rows, rows_label())

    report(on_progress, "rows", len(report_rows), n_rows, rows_label())
    report(on_progress, "scenes", len(done), n_scenes, cached)
    workers = max(1, min(jobs or default_jobs(len(todo)), max(len(todo), 1)))
    if executor == "ray":
        from avatar.build.ray_executor import run_batch

        run_batch({k: p.to_json() for k, p in todo.items()},
                  [(j, j.to_dict(), [k for k in dict.fromkeys(j.keys) if k in todo]) for j in work],
                  str(store.root), address=ray_address, num_cpus=jobs, on_scene=on_scene, on_row=on_row)
    else:
        _run_local(todo, work, str(store.root), workers, on_scene, on_row)
    result.rows = [report_rows[id(j)] for j in todo_jobs]
    write_report(result.report, result.rows)
    result.seconds = time.perf_counter() - t0
    return result


__all__ = ["batch", "prepare", "read_rows", "output_name", "render_scene", "join_row", "BatchResult", "ReportRow",
           "BatchInvalid", "Template"]
