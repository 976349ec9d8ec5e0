"""Reading the Inbox through Graph's delta query: each round's new messages, oldest first, as raw MIME."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from pipeline.mailbox.base import Cursors, Fetched
from pipeline.mailbox.graph.api import GraphApi
from pipeline.mailbox.graph.http import PREFER_IMMUTABLE, GraphError

log = logging.getLogger(__name__)

# Error codes that, like 410 Gone, mean "your delta token is no good: start a full sync again".
RESYNC_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
# How far before the last completed round a resync looks back (clock skew, late delivery).
RESYNC_OVERLAP = timedelta(days=1)


class _Resync(Exception):
    """The delta token is gone: the round must start from scratch."""


class GraphInbox:
    """The seller's Inbox as delta rounds; the deltaLink and the round's start are kept in the Cursors."""

    def __init__(self, api: GraphApi, cursors: Cursors) -> None:
        self._api = api
        self._http = api.http
        self.name = api.name
        self._cursors = cursors
        self.settings = api.settings

    def fetch(self) -> Iterator[Fetched]:
        """New inbox messages since the last completed round, oldest first, as raw MIME.

        The deltaLink is saved only once the whole round has been handed over, so a crash replays
        the round; a 410 Gone starts a full resync (the caller deduplicates by Message-ID).
        """
        started = datetime.now(UTC)
        link = self._cursors.cursor(self._api.state_key("deltaLink")) or None
        try:
            items, delta_link = self._delta_round(link)
        except _Resync:
            log.warning("%s: the delta token expired; reading the inbox again from scratch", self.name)
            items, delta_link = self._delta_round(None)
        # receivedDateTime has whole seconds; the stable sort keeps Graph's order within a second.
        items.sort(key=lambda item: item.get("receivedDateTime") or "")
        yield from self._download(items)
        self._cursors.set_cursor(self._api.state_key("deltaLink"), delta_link)
        self._cursors.set_cursor(self._api.state_key("roundStarted"), started.isoformat())

    def _delta_round(self, link: str | None) -> tuple[list[dict[str, Any]], str]:
        url = link or self._initial_delta_url()
        prefer = f"{PREFER_IMMUTABLE}, odata.maxpagesize={self.settings.page_size}"
        items: list[dict[str, Any]] = []
        while True:
            try:
                page = self._http.request(
                    "GET", url, what="read the inbox's new messages", headers={"Prefer": prefer}
                ).json()
            except GraphError as exc:
                gone = exc.status == 410 or exc.code.lower() in RESYNC_CODES
                if gone and link is not None:
                    raise _Resync from exc
                raise
            for item in page.get("value", []):
                if "@removed" in item or item.get("isDraft"):
                    continue
                items.append(item)
            if "@odata.nextLink" in page:
                url = page["@odata.nextLink"]
            elif "@odata.deltaLink" in page:
                return items, page["@odata.deltaLink"]
            else:
                raise GraphError("Microsoft Graph answered the inbox delta without a nextLink or deltaLink", status=200)

    def _initial_delta_url(self) -> str:
        # Only mail received since the last completed round (or first_sync_days on the very first
        # round): a resync must not replay the seller's whole inbox, and Graph stops at 5,000.
        last = self._cursors.cursor(self._api.state_key("roundStarted"))
        if last:
            since = datetime.fromisoformat(last) - RESYNC_OVERLAP
        else:
            since = datetime.now(UTC) - timedelta(days=self.settings.first_sync_days)
        query = urlencode(
            {
                "changeType": "created",
                "$select": "id,receivedDateTime,internetMessageId,isDraft",
                "$filter": f"receivedDateTime ge {since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
            },
            quote_via=quote,
            safe="$,",
        )
        return f"{self._api.url('/mailFolders/inbox/messages/delta')}?{query}"

    def _download(self, items: list[dict[str, Any]]) -> Iterator[Fetched]:
        # Download a few messages ahead, in order; the mailbox's gate keeps it to four at a time.
        window = self.settings.max_concurrency * 2
        pool = ThreadPoolExecutor(max_workers=self.settings.max_concurrency, thread_name_prefix="graph-mime")
        pending: deque[tuple[str, Future[bytes | None]]] = deque()
        queue = iter(items)
        try:
            while True:
                while len(pending) < window and (item := next(queue, None)) is not None:
                    pending.append((item["id"], pool.submit(self._raw, item["id"])))
                if not pending:
                    return
                key, future = pending.popleft()
                raw = future.result()
                if raw is not None:
                    yield Fetched(key=key, raw=raw)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _raw(self, key: str) -> bytes | None:
        try:
            return self._http.request(
                "GET", self._api.url(f"/messages/{quote(key, safe='')}/$value"), what="download a message"
            ).content
        except GraphError as exc:
            if exc.status == 404:
                log.info("%s: message %s was deleted before we could read it", self.name, key)
                return None
            raise
