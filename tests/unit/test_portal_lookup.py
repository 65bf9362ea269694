"""What a portal request names by id: a malformed id is not found, like a missing one."""

from __future__ import annotations

import uuid

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request

from services.portal.web.lookup import uuid_param


def _request(**path_params: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "path_params": path_params})


def test_a_uuid_path_parameter_is_read_as_one() -> None:
    wanted = uuid.uuid4()
    assert uuid_param(_request(match_id=str(wanted)), "match_id") == wanted


@pytest.mark.parametrize("given", ["geen-id", "", "1234"])
def test_a_path_parameter_that_is_no_uuid_is_not_found(given: str) -> None:
    with pytest.raises(HTTPException) as refused:
        uuid_param(_request(user_id=given), "user_id")
    assert refused.value.status_code == 404
