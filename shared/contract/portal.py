"""The portal channel (contract §9): the headers with which the web portal, a trusted
gateway with its own broker login, publishes on behalf of the partners on channel
"portal" or of a municipality's match coordinator, and the refusals ingest answers
when they do not fit."""

from __future__ import annotations

from typing import Final

from shared.contract.errors import ErrorCode, ErrorItem

# The portal partner a message speaks for (its id); only the portal's login may send it.
ON_BEHALF_OF_HEADER: Final = "x-vi-on-behalf-of"
# The portal user (account id) who acted; it goes into the audit log with the action.
ACTOR_HEADER: Final = "x-vi-actor"
MAX_ACTOR_CHARS: Final = 128
# The municipality (4-digit code) whose match coordinator sends a regie.assign; only
# the portal's login may send it, and then without x-vi-on-behalf-of.
COORDINATOR_HEADER: Final = "x-vi-coordinator"

NOT_THE_PORTAL = ErrorItem(
    loc=ON_BEHALF_OF_HEADER,
    code=ErrorCode.NOT_AUTHORIZED,
    msg=f"only the portal may publish with header {ON_BEHALF_OF_HEADER}: leave it out",
)
NO_PORTAL_PARTNER = ErrorItem(
    loc=ON_BEHALF_OF_HEADER,
    code=ErrorCode.NOT_AUTHORIZED,
    msg=(
        f"a message from the portal's login needs header {ON_BEHALF_OF_HEADER} with the "
        'id of a partner on channel "portal" (a regie.assign: header '
        f"{COORDINATOR_HEADER} instead)"
    ),
)
NOT_THE_PORTAL_COORDINATOR = ErrorItem(
    loc=COORDINATOR_HEADER,
    code=ErrorCode.NOT_AUTHORIZED,
    msg=(
        f"only the portal may publish with header {COORDINATOR_HEADER}: a coordinator "
        "acts through the portal"
    ),
)
NO_COORDINATOR = ErrorItem(
    loc=COORDINATOR_HEADER,
    code=ErrorCode.NOT_AUTHORIZED,
    msg=f"header {COORDINATOR_HEADER} must be the 4-digit code of a municipality of the region",
)
COORDINATOR_FOR_A_PARTNER = ErrorItem(
    loc=COORDINATOR_HEADER,
    code=ErrorCode.NOT_AUTHORIZED,
    msg=(
        f"a coordinator acts for no partner: send {COORDINATOR_HEADER} without "
        f"{ON_BEHALF_OF_HEADER}"
    ),
)
NOT_THE_COORDINATOR = ErrorItem(
    loc=COORDINATOR_HEADER,
    code=ErrorCode.NOT_AUTHORIZED,
    msg="the youth of this match lives in another municipality than the coordinator's",
)
NO_ACTOR = ErrorItem(
    loc=ACTOR_HEADER,
    code=ErrorCode.NOT_AUTHORIZED,
    msg=(
        f"a message from the portal needs header {ACTOR_HEADER} naming the portal user "
        f"who acts (1-{MAX_ACTOR_CHARS} printable characters)"
    ),
)
