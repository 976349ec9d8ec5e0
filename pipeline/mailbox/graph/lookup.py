"""Finding messages by Message-ID through Graph: ours in a well-known folder, or the one a reply answers."""

from __future__ import annotations

from typing import Any

from pipeline.mailbox.base import with_brackets
from pipeline.mailbox.graph.api import GraphApi, quoted
from pipeline.mailbox.graph.payload import OUR_ID_PROPERTY


def ours(api: GraphApi, folder: str, message_id: str) -> list[dict[str, Any]]:
    """Items in a well-known folder with this Message-ID, or stamped with it as MutualPlanMessageId."""
    wanted = with_brackets(message_id)
    url = api.url(f"/mailFolders/{folder}/messages")
    select = {"$select": "id,internetMessageId,isDraft"}
    by_id = f"internetMessageId eq '{quoted(wanted)}'"
    found = api.http.request("GET", url, what=f"look in {folder}", params={"$filter": by_id, **select}).json()
    if found.get("value"):
        return list(found["value"])
    # Filtering on an extended property: learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get
    by_property = (
        f"singleValueExtendedProperties/Any(ep: ep/id eq '{OUR_ID_PROPERTY}' and ep/value eq '{quoted(wanted)}')"
    )
    found = api.http.request(
        "GET", url, what=f"look in {folder}", params={"$filter": by_property, **select}
    ).json()
    return list(found.get("value", []))


def find_message(api: GraphApi, internet_message_id: str) -> str | None:
    """The id of the (non-draft) message with this Message-ID anywhere in the mailbox."""
    if not internet_message_id:
        return None
    found = api.http.request(
        "GET",
        api.url("/messages"),
        what="find the message being answered",
        params={
            "$filter": f"internetMessageId eq '{quoted(internet_message_id)}'",
            "$select": "id,isDraft",
            "$top": "5",
        },
    ).json()
    for item in found.get("value", []):
        if not item.get("isDraft"):
            return str(item["id"])
    return None
