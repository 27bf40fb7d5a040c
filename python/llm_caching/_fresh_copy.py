"""A new result object for each whole-run hit (_whole_run.py), made from the run's template.

Every hit returns its own object, sharing nothing mutable with the template or with another
hit's result: a caller may change one result's messages, output or usage without touching the
next. pydantic_ai's JSON (``TypeAdapter(AgentRunResult[...]).validate_json``) makes one in
about 35 µs, a third of a whole-run hit, most of it in pydantic_ai's own Python validators;
``copy.deepcopy`` takes about 90 µs. ``fresh`` copies the template's tree directly: dicts,
lists and tuples; the dataclasses pydantic_ai's messages, parts and usage are made of, by their
``__dict__`` (no ``__init__``, no validation: the template was validated when it was made);
immutable values (strings, numbers, datetimes, ...) shared; anything else by ``copy.deepcopy``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import types
from decimal import Decimal
from typing import Any

#: Values never changed in place: shared between copies.
_SHARED = (str, int, float, bool, type(None), bytes, Decimal, datetime.date, datetime.time,
           datetime.timedelta, datetime.tzinfo, enum.Enum, type, types.FunctionType)
_DICT, _LIST, _TUPLE, _FIELDS, _DEEP = range(5)
_how: dict[type, int] = {dict: _DICT, list: _LIST, tuple: _TUPLE}
#: The exact types found to be _SHARED (a set lookup is cheaper than isinstance on them all).
_shared: set[type] = {str, int, float, bool, type(None), Decimal, datetime.datetime}


def _how_to_copy(kind: type, value: Any) -> int | None:
    if issubclass(kind, _SHARED):
        _shared.add(kind)
        return None
    if (dataclasses.is_dataclass(kind) and hasattr(value, "__dict__")
            and not any(base.__dict__.get("__slots__") for base in kind.__mro__)):
        how = _FIELDS  # all its state is in its __dict__
    else:
        how = _DEEP
    _how[kind] = how
    return how


def fresh(value: Any) -> Any:
    """A copy of value that shares none of its mutable parts with it."""
    kind = type(value)
    if kind in _shared:
        return value
    how = _how.get(kind)
    if how is None:
        how = _how_to_copy(kind, value)
        if how is None:
            return value
    if how == _FIELDS:
        copied = object.__new__(kind)
        copied.__dict__.update({name: item if type(item) in _shared else fresh(item)
                                for name, item in value.__dict__.items()})
        return copied
    if how == _LIST:
        return [item if type(item) in _shared else fresh(item) for item in value]
    if how == _DICT:
        return {key: item if type(item) in _shared else fresh(item)
                for key, item in value.items()}
    if how == _TUPLE:
        return tuple(fresh(item) for item in value)
    return copy.deepcopy(value)


_result_types: tuple[Any, Any, tuple[str, ...]] | None = None


def fresh_result(template: Any) -> Any:
    """A new AgentRunResult equal to template (one made from pydantic_ai's JSON: its state holds
    only what that JSON carries): the state's serialized fields copied, its run-local scratch
    new, as the JSON would give it."""
    global _result_types
    if _result_types is None:
        from pydantic_ai._agent_graph import GraphAgentState
        from pydantic_ai.run import _STATE_KEYS, AgentRunResult
        _result_types = (AgentRunResult, GraphAgentState, ("message_history",) + _STATE_KEYS)
    result_type, state_type, names = _result_types
    state = template._state
    return result_type(fresh(template.output), template._output_tool_name,
                       state_type(**{name: fresh(getattr(state, name)) for name in names}),
                       template._new_message_index, template._traceparent_value)
