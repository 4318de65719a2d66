"""The values a type annotation allows, in the words of the one-line errors ("an integer from 16 to
4096", "null or a number > 0", "8, 16, 32"): generated from the annotation and its constraints, so
that a rule is stated once, by its constraint. Read by the config schema (its fields) and by the
command line (the arguments of a `_target_`, from the callable's signature), which also asks
whether a value fits (`accepts`)."""

import collections.abc
import inspect
import types
import typing

import annotated_types as at

_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)
_NOUNS = {int: "an integer", float: "a number", str: "a string", dict: "a mapping"}


def allowed(annotation, constraints=()) -> str:
    """`int` with ge=16, le=4096 -> "an integer from 16 to 4096"; `Literal[8, 16] | None` -> "null, 8, 16"."""
    choices = list(dict.fromkeys(_choices(annotation, list(constraints))))
    values = ", ".join(c for c in choices if " " not in c)  # null, 8, 16, 32
    return " or ".join([values] * bool(values) + [c for c in choices if " " in c])


def _choices(annotation, constraints: list) -> list[str]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        return _choices(inner, constraints + [m for e in extra for m in getattr(e, "metadata", [e])])
    if origin in (typing.Union, types.UnionType):
        args = sorted(typing.get_args(annotation), key=lambda a: a is not type(None))  # null first
        choices = [choice for a in args for choice in _choices(a, constraints)]
        # int | float with the same bounds: a number
        return [c for c in choices if not c.startswith("an integer") or "a number" + c[10:] not in choices]
    if origin is typing.Literal:
        return [_literal(a) for a in typing.get_args(annotation)]
    if annotation is inspect.Parameter.empty or annotation is typing.Any:
        return ["any value"]
    if annotation in (None, type(None)):
        return ["null"]
    if annotation is bool:
        return ["true", "false"]
    if annotation in _NOUNS:
        return [_NOUNS[annotation] + _bounds(constraints)]
    if annotation in _SEQUENCES or origin in _SEQUENCES:
        (item, *_) = typing.get_args(annotation) or (typing.Any,)
        items = " or ".join(_plural(c) for c in _choices(item, [])) if item is not typing.Any else "values"
        return [f"a list of {_length(constraints)}{items}"]
    if annotation is dict or origin in (dict, collections.abc.Mapping):
        key, value = typing.get_args(annotation) or (typing.Any, typing.Any)
        return [f"{{{allowed(key)}: {allowed(value)}}}"]
    name = getattr(annotation, "__name__", str(annotation))
    return [f"{'an' if name[0] in 'AEIOU' else 'a'} {name} (by name or _target_)"]


def _literal(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _bounds(constraints: list) -> str:
    low = next(((">=", c.ge) for c in constraints if isinstance(c, at.Ge)),
               next(((">", c.gt) for c in constraints if isinstance(c, at.Gt)), None))
    high = next((("<=", c.le) for c in constraints if isinstance(c, at.Le)),
                next((("<", c.lt) for c in constraints if isinstance(c, at.Lt)), None))
    if low and high and low[0] == ">=" and high[0] == "<=":
        return f" from {low[1]} to {high[1]}"
    return " and".join(f" {bound[0]} {bound[1]}" for bound in (low, high) if bound)


def _length(constraints: list) -> str:
    low = next((c.min_length for c in constraints if isinstance(c, at.MinLen)), 0)
    high = next((c.max_length for c in constraints if isinstance(c, at.MaxLen)), None)
    if high is None:
        return "one or more " if low == 1 else f"{low} or more " if low else ""
    return f"{low} " if low == high else f"{low} or {high} " if high == low + 1 else f"{low} to {high} "


def _plural(choice: str) -> str:
    """"an integer > 0" -> "integers > 0"; "a list of ..." -> "lists of ..."."""
    article, _, rest = choice.partition(" ")
    if article not in ("a", "an"):
        return choice
    noun, _, tail = rest.partition(" ")
    return f"{noun}s {tail}".strip()


def accepts(annotation, value) -> bool:
    """Whether a command-line value (int, float, bool, str, None, list or dict) fits an annotation.
    Other classes (a Profiler, a Strategy) are given by name or as a `_target_` mapping."""
    if annotation is inspect.Parameter.empty or annotation is typing.Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(accepts(a, value) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(annotation))
    if annotation is type(None) or annotation is None:
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if annotation in _SEQUENCES or origin in _SEQUENCES:
        return isinstance(value, list | tuple)
    if annotation is dict or origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    return isinstance(value, str | dict)
