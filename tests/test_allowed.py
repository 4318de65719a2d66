"""The allowed values said from a type and its constraints: the words of every one-line refusal of
a config value or a `_target_` argument."""

import inspect
import typing
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field, FiniteFloat
from pytorch_lightning import Trainer

from deeplab.allowed import accepts, allowed
from deeplab.schema import TrainConfig

Number = int | FiniteFloat
Side = Annotated[int, Field(ge=16, le=4096)]


@pytest.mark.parametrize("annotation, constraints, words", [
    (int, Field(gt=0), "an integer > 0"),
    (int, Field(ge=8, le=64), "an integer from 8 to 64"),
    (Number, Field(ge=0, lt=1), "a number >= 0 and < 1"),  # int | float with the same bounds: a number
    (Literal[8, 16, 32] | None, Field(), "null, 8, 16, 32"),
    (Literal[-1] | Annotated[int, Field(ge=1)], Field(), "-1 or an integer >= 1"),
    (Annotated[int, Field(ge=1)] | Annotated[FiniteFloat, Field(gt=0, le=1)] | None, Field(),
     "null or an integer >= 1 or a number > 0 and <= 1"),
    (Side | Annotated[list[Side], Field(min_length=1, max_length=2)], Field(),
     "an integer from 16 to 4096 or a list of 1 or 2 integers from 16 to 4096"),
    (list[Annotated[int, Field(gt=0)]], Field(min_length=1), "a list of one or more integers > 0"),
    (dict[Annotated[int, Field(ge=0, le=255)], int | None] | None, Field(),
     "null or {an integer from 0 to 255: null or an integer}"),
    (bool, Field(), "true, false"),
    (str | None, Field(), "null or a string"),
])
def test_words_come_from_the_type_and_its_constraints(annotation, constraints, words):
    assert allowed(annotation, constraints.metadata) == words


def test_every_schema_field_has_words():
    """No field of the train config falls through to a class's name or to 'any value'."""
    def fields(section, prefix=""):
        for name, field in section.model_fields.items():
            inner = next((t for t in (field.annotation, *typing.get_args(field.annotation))
                          if isinstance(t, type) and issubclass(t, BaseModel)), None)
            if inner is not None:  # a section, or an optional one
                yield from fields(inner, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", allowed(field.annotation, field.metadata)

    said = dict(fields(TrainConfig))
    assert len(said) > 60
    assert not [key for key, words in said.items() if "any value" in words or "_target_" in words], said


def test_trainer_arguments_are_said_and_checked():
    parameters = inspect.signature(Trainer.__init__).parameters
    assert allowed(parameters["max_epochs"].annotation) == "null or an integer"
    assert allowed(parameters["profiler"].annotation).startswith("null or a Profiler (by name or _target_)")
    assert accepts(parameters["max_epochs"].annotation, 3) and not accepts(parameters["max_epochs"].annotation, "3")
    assert accepts(parameters["max_epochs"].annotation, None)
    assert not accepts(parameters["max_epochs"].annotation, True)  # a bool is no integer here
    assert accepts(parameters["profiler"].annotation, "simple")
    assert accepts(parameters["profiler"].annotation, {"_target_": "pytorch_lightning.profilers.SimpleProfiler"})
    assert accepts(parameters["precision"].annotation, "bf16-mixed") and not accepts(
        parameters["precision"].annotation, "bf16-auto")
    assert accepts(parameters["devices"].annotation, [0, 1]) and not accepts(parameters["limit_train_batches"]
                                                                           .annotation, "abc")
