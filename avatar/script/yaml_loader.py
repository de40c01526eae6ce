"""YAML presentation templates.

    extends: base.yaml            # optional: deep-merged under this file (chains allowed)
    title: My talk
    voice: {preset: joe, speed: 1.05}
    avatar: {photo: me.jpg, layout: pip}
    scenes:
      - slide: {layout: title, title: Hello}
        narration: Welcome! [pause 0.5s] Let's begin.
      - layout: side              # shorthand for avatar: {layout: side}
        voice: {speed: 0.9}       # partial override of the presentation's voice
        narration: ...

Parsed with ruamel.yaml's round-trip loader, which keeps the line of every key, so
every error names file:line. Tags (``!!python/...``, ``!foo``) are refused, never run.
Relative paths are resolved against the folder of the file that wrote them.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from avatar.errors import AvatarError
from avatar.resources import templates_dir
from avatar.script.build import Locs, build, deep_merge, merge_locs, normalize, read_text
from avatar.script import DECK_SUFFIXES
from avatar.script.models import Presentation


def load_yaml(path: str | Path) -> Presentation:
    """Load a YAML template (following `extends:`) into a validated Presentation."""
    path = Path(path)
    name = str(path)
    texts: dict[str, str] = {}
    data, locs = load_tree(path, texts)
    return build(data, locs, path.resolve(), (name, 1), texts)


def load_tree(path: Path, texts: dict[str, str], chain: tuple[Path, ...] = (), fill=None) -> tuple[dict, Locs]:
    """One YAML file, normalised, with its `extends:` parents merged under it.

    fill(data, locs, file): called on each file's raw data before its paths are resolved
    (avatar.build.batch fills a row's {{placeholders}} there)."""
    name = str(path)
    text = read_text(path)
    texts[name] = text
    data, locs = parse_yaml(text, name)
    if data is None:
        raise AvatarError("the file is empty", path=name, line=1, hint="start from `avatar init NAME`")
    if not isinstance(data, dict):
        raise AvatarError("the top level must be a mapping of settings (title:, scenes:, ...)",
                          path=name, line=1)
    if fill is not None:
        fill(data, locs, name)
    normalize(data, locs, path.parent.resolve(), (name, 1))
    return apply_extends(data, locs, path, texts, chain, fill)


def apply_extends(data: dict, locs: Locs, path: Path, texts: dict[str, str],
                  chain: tuple[Path, ...] = (), fill=None) -> tuple[dict, Locs]:
    """If `data` has `extends: parent.yaml`, deep-merge the parent (recursively) under it."""
    if "extends" not in data:
        return data, locs
    name = str(path)
    ext = data.pop("extends")
    file, line = locs.get(("extends",), (name, 1))
    if not isinstance(ext, str) or not ext.strip():
        raise AvatarError("must be the path of a YAML file", path=file, line=line, field="extends",
                          hint="e.g. extends: base.yaml")
    target = _extends_target(ext.strip(), path.parent)
    if target is None:
        raise AvatarError(f"file not found: {(path.parent / ext.strip()).resolve()}", path=file, line=line,
                          field="extends", hint="the path is relative to this file's folder")
    here = chain + (path.resolve(),)
    if target.resolve() in here:
        cycle = " -> ".join(p.name for p in here + (target.resolve(),))
        raise AvatarError(f"cycle: {cycle}", path=file, line=line, field="extends",
                          hint="remove one of the extends")
    if target.suffix.lower() in DECK_SUFFIXES:       # extends: deck.pptx  (its scenes, title, transitions)
        from avatar.script.deck import deck_tree
        parent, parent_locs = deck_tree(target)
        return deep_merge(parent, data), merge_locs(parent_locs, locs, data)
    if target.suffix.lower() not in (".yaml", ".yml"):
        raise AvatarError(f"can only extend a YAML file, not {target.name}", path=file, line=line,
                          field="extends")
    parent, parent_locs = load_tree(target, texts, here, fill)
    return deep_merge(parent, data), merge_locs(parent_locs, locs, data)


def _extends_target(ext: str, folder: Path) -> Path | None:
    p = Path(ext).expanduser()
    p = p if p.is_absolute() else folder / p
    if p.is_file():
        return p
    if "/" not in ext and "\\" not in ext:           # a bundled template by name: `extends: demo`
        for cand in (templates_dir() / ext, templates_dir() / f"{ext}.yaml"):
            if cand.is_file():
                return cand
    return None


def parse_yaml(text: str, file: str, line_offset: int = 0) -> tuple[Any, Locs]:
    """YAML text -> (plain data, locations). Tags are refused; syntax errors name the line.

    `line_offset` is added to every line (YAML front matter inside a Markdown file).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        _check_events(YAML(typ="rt").parse(io.StringIO(text)), file, line_offset)
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 + line_offset if mark is not None else None
        what = e.problem or e.context or "invalid YAML"
        if e.context and e.problem:
            what = f"{e.context}, {e.problem}"
        raise AvatarError(f"YAML syntax error: {what}", path=file, line=line,
                          hint="check indentation, colons and quotes") from None
    except YAMLError as e:
        raise AvatarError(f"YAML syntax error: {e}", path=file) from None
    locs: Locs = {}
    data = _plain(tree, file, line_offset, (), locs)
    locs.setdefault((), (file, 1 + line_offset))
    return data, locs


def _check_events(events, file: str, line_offset: int) -> None:
    """One pass over the parser's events, before anything is built: tags are refused, and so
    are nesting deeper than MAX_YAML_DEPTH and more than MAX_YAML_NODES values once every
    alias is expanded (an alias bomb is a few lines that expand to billions of values)."""
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent

    from avatar.limits import MAX_YAML_DEPTH, MAX_YAML_NODES

    sizes: dict[str, int] = {}          # anchor -> values it expands to
    stack: list[list] = [[0, None]]     # open collections: [values so far, anchor]
    for event in events:
        line = event.start_mark.line + 1 + line_offset if event.start_mark is not None else None
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = str(tag).replace("tag:yaml.org,2002:", "!!")
            raise AvatarError(f"YAML tags are not allowed ({shown})", path=file, line=line,
                              hint="remove the tag and write a plain value")
        if isinstance(event, CollectionStartEvent):
            stack.append([1, event.anchor])
            if len(stack) - 1 > MAX_YAML_DEPTH:
                raise AvatarError(f"nested more than {MAX_YAML_DEPTH} levels deep", path=file, line=line,
                                  hint="a presentation needs a few levels; check the indentation")
            continue
        if isinstance(event, CollectionEndEvent):
            n, anchor = stack.pop()
        elif isinstance(event, AliasEvent):
            n, anchor = sizes.get(event.anchor, 1), None
        elif isinstance(event, NodeEvent):   # a scalar
            n, anchor = 1, event.anchor
        else:
            continue
        if anchor is not None:
            sizes[anchor] = n
        stack[-1][0] += n
        if stack[0][0] + sum(c[0] for c in stack[1:]) > MAX_YAML_NODES:
            raise AvatarError(f"more than {MAX_YAML_NODES} values once its aliases (*name) are expanded",
                              path=file, line=line, hint="use fewer or smaller anchors and aliases")


def _plain(node: Any, file: str, off: int, path: tuple, locs: Locs) -> Any:
    """ruamel round-trip objects -> builtin types, recording the line of every key and item."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out = {}
        for k, v in node.items():
            key = str(k)
            try:
                line = node.lc.key(k)[0]
            except (KeyError, TypeError, AttributeError):   # keys merged in with `<<:`
                line = node.lc.line
            locs[path + (key,)] = (file, line + 1 + off)
            out[key] = _plain(v, file, off, path + (key,), locs)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, v in enumerate(node):
            try:
                line = node.lc.item(i)[0]
            except (KeyError, TypeError, AttributeError):
                line = node.lc.line
            locs[path + (i,)] = (file, line + 1 + off)
            out_list.append(_plain(v, file, off, path + (i,), locs))
        return out_list
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return bool(node) if type(node).__name__ == "ScalarBoolean" else int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node
