"""Error codes that partners receive in a receipt, and the shape of one error.

The codes are part of the partner contract: partners branch on them, so a code is
never renamed. ``loc`` is a dotted path into the message body (``"youth.bsn"``) or,
for a problem with the message as a whole, one of ``"body"``, ``"type"`` or
``"message_id"``.
"""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ErrorCode(StrEnum):
    # Envelope and shape of the message.
    INVALID_JSON = "invalid_json"
    SCHEMA = "schema"
    UNKNOWN_TYPE = "unknown_type"
    TOO_LARGE = "too_large"
    MISSING_MESSAGE_ID = "missing_message_id"
    NOT_AUTHORIZED = "not_authorized"
    # Rules checked at the front door without stored state.
    BSN_CHECKSUM = "bsn_checksum"
    TOO_OLD = "too_old"
    BIRTH_DATE_FUTURE = "birth_date_future"
    REPORTED_AT_FUTURE = "reported_at_future"
    UNKNOWN_MUNICIPALITY = "unknown_municipality"
    # Rules that need stored state (checked by the services behind the front door).
    ALREADY_REGISTERED = "already_registered"
    DUPLICATE_REF = "duplicate_ref"
    UNKNOWN_MELDING = "unknown_melding"
    NOT_ACTIVE = "not_active"
    NO_MATCH = "no_match"
    REGIE_TAKEN = "regie_taken"
    UNKNOWN_PERSON = "unknown_person"
    # Since 1.1 (regie.assign, §9): no live match group has that match_id.
    UNKNOWN_MATCH = "unknown_match"


class ErrorItem(BaseModel):
    """One reason why a message was rejected.

    ``msg`` goes back to the partner and may be logged, so it never quotes personal
    data from the message (BSN, surname, birth date).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    loc: str
    code: ErrorCode
    msg: str


# The answer to every message of a partner that has left the region (`retired`).
NOT_A_PARTNER_ANY_MORE = ErrorItem(
    loc="body",
    code=ErrorCode.NOT_AUTHORIZED,
    msg="your organisation has left this region (retired): the index takes no messages from it",
)
