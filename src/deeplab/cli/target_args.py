"""Keyword arguments of a config node's `_target_` (the Lightning Trainer, a logger, an optimizer),
read from the callable's own signature: any of them can be set by name on the command line, a
typo gets a suggestion, and a value of the wrong type is refused before anything is built."""

import collections.abc
import difflib
import importlib
import inspect
import types
import typing


def suggest(value: str, allowed) -> str:
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def target_signature(target) -> inspect.Signature | None:
    """The signature `_target_` is called with (a class's __init__ without self); None when the
    target cannot be imported or has no signature to read."""
    if not isinstance(target, str) or "." not in target:
        return None
    module, _, name = target.rpartition(".")
    try:
        return inspect.signature(getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError, TypeError, ValueError):
        return None


def takes_any_keyword(signature: inspect.Signature) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)


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


def describe(annotation) -> str:
    """The values an annotation allows, in the words of the one-line errors, each once."""
    return ", ".join(dict.fromkeys(_choices(annotation)))


def _choices(annotation) -> list[str]:
    if annotation is inspect.Parameter.empty or annotation is typing.Any:
        return ["any value"]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [choice for a in typing.get_args(annotation) for choice in _choices(a)]
    if origin is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    words = {type(None): "null", None: "null", bool: "true, false", int: "an integer", float: "a number",
             str: "a string", dict: "a mapping"}
    if annotation in words:
        return [words[annotation]]
    if annotation in _SEQUENCES or origin in _SEQUENCES:
        return ["a list"]
    if origin in (dict, collections.abc.Mapping):
        return ["a mapping"]
    return [f"a {getattr(annotation, '__name__', annotation)} name or _target_"]
