"""A new result object for each whole-run hit (_whole_run.py), made from the run's template.

Every hit returns its own object, sharing nothing mutable with the template or with another
hit's result: a caller may change one result's messages, output or usage without touching the
next. pydantic_ai's JSON (``TypeAdapter(AgentRunResult[...]).validate_json``) makes one in
about 35 µs, most of a whole-run hit, much of it in pydantic_ai's own Python validators;
``copy.deepcopy`` takes about 90 µs. Here the template's tree is walked once, when the run is
remembered, into a copy plan (``plan``): which parts are mutable and how each is copied. dicts,
lists and tuples are copied; the dataclasses pydantic_ai's messages, parts and usage are made of
are copied by their ``__dict__`` (no ``__init__``, no validation: the template was validated
when it was made), then their mutable fields replaced by copies; immutable values (strings,
numbers, datetimes, ...) are shared; anything else is copied by ``copy.deepcopy``. A hit then
only runs the plan (about 8 µs for a one-step run).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import types
from decimal import Decimal
from typing import Any, Callable

#: Values never changed in place: shared between copies.
_SHARED = (str, int, float, bool, type(None), bytes, Decimal, datetime.date, datetime.time,
           datetime.timedelta, datetime.tzinfo, enum.Enum, type, types.FunctionType)

Copy = Callable[[Any], Any]


def _by_fields(kind: type, value: Any) -> bool:
    """A dataclass whose whole state is in its __dict__ (no __slots__ anywhere)."""
    return (dataclasses.is_dataclass(kind) and hasattr(value, "__dict__")
            and not any(base.__dict__.get("__slots__") for base in kind.__mro__))


def _copy_object(kind: type, fields: list[tuple[str, Copy]]) -> Copy:
    new = object.__new__

    def copy_object(value: Any) -> Any:
        copied = new(kind)
        state = copied.__dict__
        state.update(value.__dict__)
        for name, copy_field in fields:
            state[name] = copy_field(state[name])
        return copied
    return copy_object


def _copy_dict(items: list[tuple[Any, Copy]]) -> Copy:
    def copy_dict(value: dict) -> dict:
        copied = value.copy()
        for key, copy_item in items:
            copied[key] = copy_item(copied[key])
        return copied
    return copy_dict


def _copy_sequence(kind: type, items: list[Copy | None]) -> Copy:
    def copy_sequence(value: Any) -> Any:
        return kind(item if copy_item is None else copy_item(item)
                    for item, copy_item in zip(value, items))
    return copy_sequence


def plan(value: Any) -> Copy | None:
    """How to copy values shaped as ``value`` is (the template's own parts: a plan is only ever
    used on what it was made from); None: share it, it never changes."""
    kind = type(value)
    if isinstance(value, _SHARED):
        return None
    if kind is dict:
        items = [(key, copy_item) for key, item in value.items()
                 if (copy_item := plan(item)) is not None]
        return _copy_dict(items) if items else dict.copy
    if kind in (list, tuple):
        items = [plan(item) for item in value]
        if not any(items):
            return list.copy if kind is list else None
        return _copy_sequence(kind, items)
    if _by_fields(kind, value):
        fields = [(name, copy_field) for name, field in vars(value).items()
                  if (copy_field := plan(field)) is not None]
        return _copy_object(kind, fields)
    return copy.deepcopy


class ResultCopier:
    """Makes new AgentRunResults equal to a template (one made from pydantic_ai's JSON: its
    state holds only what that JSON carries): the state's serialized fields copied by plan, its
    run-local scratch new, as the JSON would give it."""

    def __init__(self, template: Any) -> None:
        from pydantic_ai._agent_graph import GraphAgentState
        from pydantic_ai.run import _STATE_KEYS, AgentRunResult
        self._types = (AgentRunResult, GraphAgentState)
        self._template = template
        self._output = plan(template.output)
        state = template._state
        self._state = [(name, getattr(state, name), plan(getattr(state, name)))
                       for name in ("message_history",) + _STATE_KEYS]

    def __call__(self) -> Any:
        result_type, state_type = self._types
        template = self._template
        output = template.output if self._output is None else self._output(template.output)
        state = state_type(**{name: value if copy_value is None else copy_value(value)
                              for name, value, copy_value in self._state})
        return result_type(output, template._output_tool_name, state,
                           template._new_message_index, template._traceparent_value)
