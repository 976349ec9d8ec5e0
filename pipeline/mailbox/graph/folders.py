"""Filing mail through Graph: read and categorized, then moved into a folder path created as needed."""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import quote

from pipeline.errors import ConfigError
from pipeline.mailbox.base import HELD, PROCESSED
from pipeline.mailbox.graph.api import GraphApi, quoted
from pipeline.mailbox.graph.http import GraphError

log = logging.getLogger(__name__)


class GraphFolders:
    """Where acknowledged mail goes: folder ids by path, looked up or created once per process."""

    def __init__(self, api: GraphApi) -> None:
        self._api = api
        self._http = api.http
        self.name = api.name
        self.settings = api.settings
        self._folders: dict[str, str] = {}
        self._folders_lock = threading.Lock()

    def ack(self, key: str, folder: str | None = PROCESSED) -> None:
        """Mark read, add the category, move to the folder (Processed and Held map to the settings).

        `folder=None` is mail about no plan: it stays as the seller left it, unread and uncategorized.
        The delta asks only for created messages, so it does not come back when the seller reads it.
        """
        if folder is None:
            return
        path = {PROCESSED: self.settings.processed_folder, HELD: self.settings.held_folder}.get(folder, folder)
        url = self._api.url(f"/messages/{quote(key, safe='')}")
        try:
            current = self._http.request(
                "GET", url, what="read a message's flags", params={"$select": "isRead,categories,parentFolderId"}
            ).json()
        except GraphError as exc:
            if exc.status == 404:
                log.warning("%s: message %s is gone from the mailbox; nothing to file", self.name, key)
                return
            raise
        change: dict[str, Any] = {}
        if not current.get("isRead"):
            change["isRead"] = True
        categories = list(current.get("categories") or [])
        if self.settings.category and self.settings.category not in categories:
            change["categories"] = [*categories, self.settings.category]
        if change:
            self._http.request("PATCH", url, what="mark a message read and categorized", json=change)
        destination = self._folder_id(path)
        if current.get("parentFolderId") != destination:
            self._http.request(
                "POST", f"{url}/move", what=f"move a message to {path}", json={"destinationId": destination}
            )

    def _folder_id(self, path: str) -> str:
        """The id of a folder path like "Mutual Plan/Processed", creating what is missing."""
        names = [name.strip() for name in path.split("/") if name.strip()]
        if not names:
            raise ConfigError(f"empty graph folder name {path!r}")
        with self._folders_lock:
            parent: str | None = None
            for depth, name in enumerate(names):
                so_far = "/".join(names[: depth + 1])
                if so_far not in self._folders:
                    self._folders[so_far] = self._child_folder(parent, name)
                parent = self._folders[so_far]
            assert parent is not None
            return parent

    def _child_folder(self, parent: str | None, name: str) -> str:
        folders = (
            self._api.url("/mailFolders")
            if parent is None
            else self._api.url(f"/mailFolders/{quote(parent, safe='')}/childFolders")
        )
        query = {"$filter": f"displayName eq '{quoted(name)}'", "$select": "id,displayName"}
        found = self._http.request("GET", folders, what=f"look up the folder {name}", params=query).json()
        if found.get("value"):
            return str(found["value"][0]["id"])
        try:
            made = self._http.request("POST", folders, what=f"create the folder {name}", json={"displayName": name})
        except GraphError as exc:
            if exc.status != 409:
                raise
            # Someone created it between our look-up and our create.
            found = self._http.request("GET", folders, what=f"look up the folder {name}", params=query).json()
            if not found.get("value"):
                raise
            return str(found["value"][0]["id"])
        return str(made.json()["id"])
