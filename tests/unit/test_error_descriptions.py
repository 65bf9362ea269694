"""Error descriptions go into logs and parked-message headers: they say what went
wrong without quoting the data it went wrong on."""

from __future__ import annotations

import asyncpg
import pydantic

from shared.logs import describe_error


def test_a_database_error_leaves_out_the_row_it_quotes() -> None:
    exc = asyncpg.exceptions.CheckViolationError.new(
        {
            "M": 'new row for relation "youth" violates check constraint "youth_birth_date"',
            "D": "Failing row contains (7, \\x01, t, 2011-10-17, 0363).",
            "C": "23514",
        }
    )
    assert "2011-10-17" in str(exc)  # what asyncpg itself would print
    text = describe_error(exc)
    assert "2011-10-17" not in text and "Failing row" not in text
    assert text == (
        'CheckViolationError: new row for relation "youth" violates check constraint'
        ' "youth_birth_date" (SQLSTATE 23514)'
    )


def test_a_validation_error_names_the_field_not_the_value() -> None:
    class Youth(pydantic.BaseModel):
        bsn: int

    try:
        Youth.model_validate({"bsn": "Jansen 123456782"})
    except pydantic.ValidationError as exc:
        text = describe_error(exc)
    assert text == "ValidationError: bsn (int_parsing)"


def test_other_errors_keep_their_message_within_the_limit() -> None:
    assert describe_error(ConnectionError("refused"), 300) == "ConnectionError: refused"
    assert len(describe_error(RuntimeError("x" * 1000), 300)) == 300


def test_a_query_argument_that_cannot_be_encoded_is_not_quoted() -> None:
    # As asyncpg raises it when a value does not fit the column's type.
    exc = asyncpg.exceptions.DataError(
        "invalid input for query argument $3: '2011-10-17' (expected a datetime.date)"
    )
    assert describe_error(exc) == (
        "DataError: invalid input for query argument $3 (SQLSTATE 22000)"
    )
