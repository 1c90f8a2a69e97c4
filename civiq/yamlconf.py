"""YAML configuration files validated by pydantic, with errors a technician can act on.

Shared by the edge agent and the gateway. A file is read in two passes: :func:`load_yaml` composes the
YAML node tree (every node keeps its line and column) and constructs the plain data; pydantic validates
the data; :func:`problems_from_validation` maps every pydantic error location back to the YAML node it
came from and rewrites the message in words. Every problem is reported, not only the first::

    small-commune.yaml:23:7: counters[1].profile.services[0]: service 'X' is not defined (defined: A, B, C)

Values can also come from environment variables (``CIVIQ_MQTT__HOST=10.0.0.5``): :func:`env_overlay`
reads them with pydantic-settings, :func:`deep_merge` lays them over the file's data, and an error in
such a value names the variable instead of a line.

Validators that find several problems at once (cross-references between sections) raise
:func:`problems_error`, which carries each problem's location relative to the model being validated.

>>> doc = load_yaml_text("a: 1\\nb:\\n  - x\\n  - y\\n", "demo.yaml")
>>> doc.data
{'a': 1, 'b': ['x', 'y']}
>>> doc.position(("b", 1))
(4, 5)
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError, PydanticUndefined

from civiq.errors import CiviqError

Loc = tuple[str | int, ...]
PROBLEMS_TYPE = "civiq_problems"
ENV_FILE = "environment"


# ------------------------------------------------------------------------------------------ problems
@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a configuration, located as precisely as we can.

    ``line``/``column`` are 1-based (``None`` when the value has no place in the file, e.g. it came from
    an environment variable: then ``file`` is the variable's name).
    """

    file: str
    line: int | None
    column: int | None
    field_path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.field_path}: {self.message}" if self.field_path else f"{where}: {self.message}"


class ConfigError(CiviqError):
    """A configuration that must not run. ``problems`` lists all of them; str() is one line each."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def problems_error(problems: Iterable[tuple[Loc, str]]) -> PydanticCustomError:
    """An error for a validator that found several problems, each at a location relative to its model.

    >>> from pydantic import BaseModel, model_validator
    >>> class M(BaseModel):
    ...     a: list[int]
    ...     @model_validator(mode="after")
    ...     def check(self):
    ...         raise problems_error([(("a", 0), "too small")])
    """
    items = [(tuple(loc), msg) for loc, msg in problems]
    return PydanticCustomError(PROBLEMS_TYPE, "{count} problem(s)", {"count": len(items), "problems": items})


def format_loc(loc: Sequence[str | int]) -> str:
    """``("counters", 1, "profile")`` -> ``"counters[1].profile"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" — did you mean 'baudrate'?"`` or ``""``."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" — did you mean '{match[0]}'?" if match else ""


# ------------------------------------------------------------------------------------------ YAML
class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans, so a service prefix ``NO`` or a
    key ``on`` stays a string (the "Norway problem"). pydantic still accepts yes/no/on/off for bool fields."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass
class YamlDoc:
    """A composed YAML file: ``data`` (plain Python), ``root`` (nodes with marks) and the problems found
    while reading it (duplicate keys) that do not stop validation."""

    file: str
    data: Any
    root: yaml.Node | None
    problems: list[ConfigProblem] = field(default_factory=list)

    def node_at(self, loc: Sequence[str | int]) -> tuple[yaml.Node | None, bool]:
        """The deepest node along ``loc`` and whether it is the exact node (False: an ancestor).

        A ``"[key]"`` element selects the key node of the preceding mapping entry (pydantic's location
        for an invalid dict key)."""
        node = self.root
        if node is None:
            return None, False
        key_node: yaml.Node | None = None
        for part in loc:
            if part == "[key]":
                if key_node is None:
                    return node, False
                node = key_node
                continue
            key_node = None
            if isinstance(node, yaml.MappingNode):
                found = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                        found = (k, v)  # last one wins, like the constructor
                if found is None:
                    return node, False
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    return node, False
                node = node.value[part]
            else:
                return node, False
        return node, True

    def key_node_at(self, loc: Sequence[str | int]) -> yaml.Node | None:
        """The key node of the mapping entry at ``loc`` (for "unknown field" errors)."""
        if not loc:
            return None
        parent, exact = self.node_at(loc[:-1])
        if exact and isinstance(parent, yaml.MappingNode):
            for k, _v in parent.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(loc[-1]):
                    return k
        return None

    def position(self, loc: Sequence[str | int], *, key: bool = False) -> tuple[int | None, int | None]:
        """1-based (line, column) of ``loc`` (its key when ``key``), or of its nearest ancestor."""
        node = self.key_node_at(loc) if key else None
        if node is None:
            node, _exact = self.node_at(loc)
        if node is None:
            return 1, 1
        return node.start_mark.line + 1, node.start_mark.column + 1

    def problem(self, loc: Sequence[str | int], message: str, *, key: bool = False) -> ConfigProblem:
        line, col = self.position(loc, key=key)
        return ConfigProblem(self.file, line, col, format_loc(_display_loc(loc)), message)


def _display_loc(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    return tuple(p for p in loc if p != "[key]")


def _syntax_problem(file: str, e: yaml.YAMLError) -> ConfigProblem:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    context = getattr(e, "context", None)
    msg = f"YAML syntax error: {problem}"
    if context:
        msg += f" ({context}"
        cmark = getattr(e, "context_mark", None)
        if cmark is not None and mark is not None and cmark.line != mark.line:
            msg += f" at line {cmark.line + 1}"
        msg += ")"
    if "'\\t'" in problem or "\t" in problem:
        msg += "; YAML does not allow tabs for indentation, use spaces"
    elif "mapping values are not allowed" in problem:
        msg += "; a ':' inside a value needs quotes, or the indentation is off"
    line = mark.line + 1 if mark is not None else None
    col = mark.column + 1 if mark is not None else None
    return ConfigProblem(file, line, col, "", msg)


def _duplicate_keys(file: str, node: yaml.Node | None, path: Loc = ()) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for k, v in node.value:
            kv = k.value if isinstance(k, yaml.ScalarNode) else None
            if kv is not None and kv in seen:
                first = seen[kv].start_mark.line + 1
                out.append(ConfigProblem(file, k.start_mark.line + 1, k.start_mark.column + 1,
                                         format_loc((*path, kv)),
                                         f"duplicate key '{kv}' (first given at line {first}); "
                                         "YAML would silently keep only the last one"))
            elif kv is not None:
                seen[kv] = k
            out.extend(_duplicate_keys(file, v, (*path, kv if kv is not None else "?")))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.extend(_duplicate_keys(file, item, (*path, i)))
    return out


# A center file has a few hundred values. YAML aliases (``*name``) can make a few lines expand to billions
# ("billion laughs") or refer to themselves; deep nesting overflows the recursive parser. Both are refused.
MAX_YAML_VALUES = 100_000
MAX_YAML_DEPTH = 64


def _check_size(file: str, root: yaml.Node | None) -> None:
    """Refuse a composed document that expands past :data:`MAX_YAML_VALUES` or :data:`MAX_YAML_DEPTH`."""
    budget = MAX_YAML_VALUES
    stack: list[tuple[yaml.Node, int]] = [(root, 1)] if root is not None else []
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError([ConfigProblem(file, None, None, "", f"the file expands to more than "
                                             f"{MAX_YAML_VALUES} values: an alias (*name) repeated many times "
                                             "or used inside its own anchor")])
        if depth > MAX_YAML_DEPTH:
            raise ConfigError([ConfigProblem(file, node.start_mark.line + 1, node.start_mark.column + 1, "",
                                             f"nested more than {MAX_YAML_DEPTH} levels deep (or an alias used inside "
                                             "its own anchor)")])
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack += ((k, depth + 1), (v, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack += ((v, depth + 1) for v in node.value)


def load_yaml_text(text: str, file: str = "<string>") -> YamlDoc:
    """Compose and construct YAML text; raise :class:`ConfigError` on a syntax error."""
    try:
        root = yaml.compose(text, Loader=_Loader)
        _check_size(file, root)
        data = _Loader(text).get_single_data() if root is not None else None
    except yaml.YAMLError as e:
        raise ConfigError([_syntax_problem(file, e)]) from None
    except RecursionError:
        raise ConfigError([ConfigProblem(file, None, None, "", "nested too deeply to read")]) from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise ConfigError([ConfigProblem(file, None, None, "", f"a value cannot be read: {e}")]) from None
    return YamlDoc(file, data, root, _duplicate_keys(file, root))


def load_yaml(path: str | Path) -> YamlDoc:
    """Read a YAML file (UTF-8); unreadable files and syntax errors raise :class:`ConfigError`."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(name, None, None, "", "file not found")]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([ConfigProblem(name, None, None, "", f"not UTF-8 text ({e.reason} at byte {e.start})")]
                          ) from None
    except OSError as e:
        raise ConfigError([ConfigProblem(name, None, None, "", f"cannot read: {e.strerror or e}")]) from None
    return load_yaml_text(text, name)


# ------------------------------------------------------------------------------------------ types walk
@dataclass
class _Step:
    tp: Any  # annotation reached
    clean: Loc  # location without discriminator tags
    tags: dict[str, str]  # discriminator name -> tag crossed (last one)


def _unwrap(tp: Any) -> tuple[Any, str | None]:
    """Strip Annotated/Optional; return (type, discriminator field or None)."""
    disc = None
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            args = get_args(tp)
            for meta in args[1:]:
                d = getattr(meta, "discriminator", None)
                if isinstance(d, str):
                    disc = d
            tp = args[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp, disc


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field_type(model: type[BaseModel], name: str) -> Any:
    for fname, info in model.model_fields.items():
        if fname == name or info.alias == name:
            ann = info.annotation
            if isinstance(info.discriminator, str):
                from pydantic import Field

                ann = Annotated[ann, Field(discriminator=info.discriminator)]
            return ann
    return None


def _tag_member(members: Sequence[Any], disc: str, tag: Any) -> Any:
    for m in members:
        if _is_model(m):
            lit = m.model_fields.get(disc)
            if lit is not None and get_origin(lit.annotation) is Literal and tag in get_args(lit.annotation):
                return m
    return None


def walk_loc(model: type[BaseModel], loc: Sequence[str | int]) -> _Step:
    """Follow a pydantic error location through the model's annotations.

    Drops discriminator tags (pydantic puts ``'modbus'`` in ``('displays', 0, 'modbus', 'port')``) so the
    location matches the YAML, and reports the type reached (``None`` when it cannot be followed)."""
    tp: Any = model
    clean: list[str | int] = []
    tags: dict[str, str] = {}
    for part in loc:
        base, disc = _unwrap(tp) if tp is not None else (None, None)
        if base is not None and disc and get_origin(base) in (Union, types.UnionType):
            member = _tag_member(get_args(base), disc, part)
            if member is not None:
                tags[disc] = str(part)
                tp = member
                continue
        clean.append(part)
        if part == "[key]" or base is None:
            tp = None if part != "[key]" else tp
            continue
        origin = get_origin(base)
        if _is_model(base) and isinstance(part, str):
            tp = _field_type(base, part)
        elif origin in (list, tuple, set, frozenset, typing.Sequence) and isinstance(part, int):
            args = get_args(base)
            tp = args[0] if args else None
        elif origin in (dict, typing.Mapping):
            args = get_args(base)
            tp = args[1] if len(args) == 2 else None
        else:
            tp = None
    return _Step(tp, tuple(clean), tags)


def allowed_fields(tp: Any) -> list[str]:
    base, _ = _unwrap(tp)
    if _is_model(base):
        return [info.alias or name for name, info in base.model_fields.items()]
    return []


def _literal_choices(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected) or [s.strip() for s in re.split(r",| or ", expected) if s.strip()]


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


# ------------------------------------------------------------------------------------------ errors -> problems
def humanize(err: Mapping[str, Any], model: type[BaseModel]) -> list[tuple[Loc, str, bool]]:
    """(clean location, message, point at the key) for one pydantic error; several for a problems error."""
    kind = err["type"]
    loc = tuple(err["loc"])
    step = walk_loc(model, loc)
    clean = step.clean
    ctx = err.get("ctx") or {}
    value = err.get("input")
    note = "".join(f" ({k}: {v})" for k, v in step.tags.items())
    if kind == PROBLEMS_TYPE:
        return [((*clean, *sub), msg, False) for sub, msg in ctx.get("problems", [])]
    if kind == "extra_forbidden":
        parent = walk_loc(model, loc[:-1]).tp
        name = str(clean[-1]) if clean else "?"
        choices = allowed_fields(parent)
        hints = getattr(_unwrap(parent)[0], "unknown_field_hints", {}) if parent is not None else {}
        if name in hints:
            return [(clean, hints[name], True)]
        hint = did_you_mean(name, choices)
        if not hint and choices:
            hint = f" (allowed here: {', '.join(choices)})"
        return [(clean, f"unknown field '{name}'{hint}{note}", True)]
    if kind == "missing":
        name = str(clean[-1]) if clean else "?"
        what = "section" if len(clean) == 1 else "field"
        return [(clean, f"required {what} '{name}' is missing{note}", False)]
    if kind == "union_tag_invalid":
        disc = str(ctx.get("discriminator", "")).strip("'")
        tags = _literal_choices(str(ctx.get("expected_tags", "")))
        tag = ctx.get("tag")
        msg = f"'{tag}' is not a known {disc}: use one of {', '.join(tags)}{did_you_mean(str(tag), tags)}"
        return [((*clean, disc), msg, False)]
    if kind == "union_tag_not_found":
        disc = str(ctx.get("discriminator", "")).strip("'")
        parent = walk_loc(model, loc).tp
        base, _ = _unwrap(parent) if parent is not None else (None, None)
        tags = []
        for m in get_args(base) if base is not None else ():
            if _is_model(m) and disc in m.model_fields:
                tags += [str(a) for a in get_args(m.model_fields[disc].annotation)]
        extra = f" (one of {', '.join(tags)})" if tags else ""
        if not isinstance(value, dict):
            return [(clean, f"expected a mapping with '{disc}'{extra}, got {_show(value)}", False)]
        return [(clean, f"required field '{disc}' is missing{extra}", False)]
    if kind in ("literal_error", "enum"):
        choices = _literal_choices(str(ctx.get("expected", "")))
        msg = f"{_show(value)} is not allowed: use one of {', '.join(choices)}"
        return [(clean, msg + did_you_mean(str(value), choices) + note, False)]
    if kind in ("value_error", "assertion_error"):
        msg = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        return [(clean, msg, False)]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return [(clean, f"expected a mapping (key: value), got {_show(value)}", False)]
    if kind in ("list_type", "tuple_type", "set_type"):
        return [(clean, f"expected a list, got {_show(value)}", False)]
    if kind in ("too_short", "too_long"):
        return [(clean, f"{err['msg']}{note}", False)]
    limit = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
             "greater_than": ("more than", "gt"), "less_than": ("less than", "lt")}.get(kind)
    if limit is not None and limit[1] in ctx:
        return [(clean, f"must be {limit[0]} {ctx[limit[1]]} (got {_show(value)})", False)]
    msg = str(err["msg"])
    if not isinstance(value, dict | list):
        msg += f" (got {_show(value)})"
    return [(clean, msg, False)]


def env_var_for(loc: Sequence[str | int], env: Mapping[str, str], prefix: str, delimiter: str = "__") -> str | None:
    """The environment variable that set ``loc`` (longest match: ``CIVIQ_MQTT__PORT`` before ``CIVIQ_MQTT``)."""
    upper = {k.upper(): k for k in env}
    for n in range(len(loc), 0, -1):
        if not all(isinstance(p, str) for p in loc[:n]):
            continue
        name = (prefix + delimiter.join(str(p) for p in loc[:n])).upper()
        if name in upper:
            return upper[name]
    return None


def _has_path(data: Any, loc: Sequence[str | int]) -> bool:
    for part in loc:
        if isinstance(data, dict) and part in data or isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False
    return True


@dataclass
class EnvSource:
    """Where an overlay came from, so its errors name the variable: the overlay data, the environment
    it was read from and the variable prefix/delimiter."""

    data: Mapping[str, Any]
    env: Mapping[str, str]
    prefix: str
    delimiter: str = "__"


def problems_from_validation(error: ValidationError, model: type[BaseModel], doc: YamlDoc,
                             env: EnvSource | None = None) -> list[ConfigProblem]:
    """Every error of ``error`` as a :class:`ConfigProblem` located in ``doc`` (or in the environment)."""
    out: list[ConfigProblem] = []
    for err in error.errors(include_url=False):
        for loc, msg, key in humanize(err, model):
            shown = _display_loc(loc)
            if env is not None and loc and _has_path(env.data, shown):
                var = env_var_for(shown, env.env, env.prefix, env.delimiter)
                if var is not None:
                    value = env.env.get(var)
                    out.append(ConfigProblem(var, None, None, format_loc(shown),
                                             f"{msg} (from environment variable {var}={value!r})"))
                    continue
            out.append(doc.problem(loc, msg, key=key))
    return _dedupe(out)


def _dedupe(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[ConfigProblem] = set()
    out = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def deep_merge(base: Any, over: Mapping[str, Any]) -> Any:
    """``over`` laid on ``base``: mappings merge key by key, anything else is replaced."""
    if not isinstance(base, dict):
        return dict(over)
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def env_overlay(settings_cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    """The values ``settings_cls`` (a pydantic-settings ``BaseSettings``) would read from ``env``,
    as raw nested data (not validated): ``{"CIVIQ_MQTT__HOST": "h"}`` -> ``{"mqtt": {"host": "h"}}``."""
    from pydantic_settings import EnvSettingsSource
    from pydantic_settings.sources.utils import parse_env_vars

    class _MappingEnvSource(EnvSettingsSource):
        def __init__(self, cls: Any, mapping: Mapping[str, str]) -> None:
            self._mapping = mapping
            super().__init__(cls)

        def _load_env_vars(self) -> Mapping[str, str | None]:
            return parse_env_vars(self._mapping, self.case_sensitive, self.env_ignore_empty,
                                  self.env_parse_none_str)

    try:
        return dict(_MappingEnvSource(settings_cls, env)())
    except Exception as e:  # pydantic-settings raises SettingsError on a bad JSON value
        raise ConfigError([ConfigProblem(ENV_FILE, None, None, "", str(e))]) from None


def validate_doc(model: type[BaseModel], doc: YamlDoc, *, overlay: EnvSource | None = None,
                 partial_checks: Callable[[Any], list[tuple[Loc, str]]] | None = None) -> Any:
    """Validate ``doc`` (with ``overlay`` merged on top) against ``model``; raise :class:`ConfigError`
    listing the duplicate keys found while reading and every validation problem.

    ``partial_checks(data)`` runs when validation fails before the model's own cross-checks could
    run, so that those problems are reported in the same pass."""
    data = doc.data
    if overlay is not None and overlay.data:
        data = deep_merge(data if isinstance(data, dict) else {}, overlay.data)
    problems = list(doc.problems)
    if data is None:
        problems.append(ConfigProblem(doc.file, 1, 1, "", "the file is empty"))
        raise ConfigError(problems)
    try:
        result = model.model_validate(data)
    except ValidationError as e:
        problems += problems_from_validation(e, model, doc, overlay)
        ran_cross = any(err["type"] == PROBLEMS_TYPE and not err["loc"] for err in e.errors())
        if partial_checks is not None and not ran_cross and isinstance(data, dict):
            for loc, msg in partial_checks(data):
                problems.append(doc.problem(loc, msg))
        raise ConfigError(_sorted(_dedupe(problems))) from None
    if problems:
        raise ConfigError(_sorted(problems))
    return result


def load_settings(path: str | Path, model: type[BaseModel], *, prefix: str,
                  env: Mapping[str, str] | None = None, env_model: type | None = None,
                  partial_checks: Callable[[Any], list[tuple[Loc, str]]] | None = None) -> Any:
    r"""The one loader of both sides' YAML (the edge's center config, the gateway's settings): read ``path``,
    lay the environment variables (``prefix``, nested with ``__``; ``env`` defaults to ``os.environ``) over it
    and validate against ``model``. Raises :class:`ConfigError` listing every problem as
    ``file:line:col: field: message`` (or naming the environment variable).

    ``env_model`` is the pydantic-settings class whose variables are read (default ``model``).

        >>> import tempfile
        >>> from pydantic import BaseModel, ConfigDict
        >>> class Demo(BaseModel):
        ...     model_config = ConfigDict(extra="forbid")
        ...     port: int = 1883
        >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        ...     _ = f.write("port: 1883\nprot: 8883\n")
        >>> try:
        ...     load_settings(f.name, Demo, prefix="X_", env={})
        ... except ConfigError as e:
        ...     print(str(e).replace(f.name, "demo.yaml"))
        demo.yaml:2:1: prot: unknown field 'prot' — did you mean 'port'?
        >>> Path(f.name).unlink()
    """
    import os

    from pydantic_settings import BaseSettings

    env = os.environ if env is None else env
    doc = load_yaml(path)
    source = env_model or model
    overlay = None
    if isinstance(source, type) and issubclass(source, BaseSettings):
        overlay = EnvSource(env_overlay(source, env), env, prefix)
    return validate_doc(model, doc, overlay=overlay, partial_checks=partial_checks)


def _sorted(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    """File problems by position, then those without a line (environment variables) in their order."""
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0))


def model_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Field name -> default (``PydanticUndefined`` removed) — used by documentation generators."""
    return {n: f.default for n, f in model.model_fields.items() if f.default is not PydanticUndefined}
