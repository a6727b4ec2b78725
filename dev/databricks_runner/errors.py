"""Databricks-style API errors and the lenient parameter parsing the provider needs.

The provider stringifies every number it sends (``"timeout_seconds": "0"``), and sends GET parameters
either as a query string (sync hook) or as a JSON body (async trigger), so every value may be a string.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Rendered as ``{"error_code": ..., "message": ...}`` with ``status``, like Databricks' REST errors."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


def as_int(value: Any, name: str) -> int:
    """An int from an int or a numeric string ("42", "42.0"); 400 otherwise."""
    if isinstance(value, bool):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{name} must be a number, not {value!r}")
    try:
        number = float(value)
        whole = int(number)
    except (TypeError, ValueError, OverflowError):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{name} must be a number, not {value!r}") from None
    if number != whole or whole < 0:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{name} must be a whole number >= 0, not {value!r}")
    return whole


def as_bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def required_int(params: dict[str, Any], name: str) -> int:
    if params.get(name) in (None, ""):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{name} is required")
    return as_int(params[name], name)
