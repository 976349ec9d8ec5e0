"""How each message's sender was authenticated when it arrived, kept with the evidence (append-only)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from pipeline.store import schema
from pipeline.store.database import Database, _insert_ignore, _json, utc_iso


@dataclass(frozen=True)
class AuthRecord:
    """Our DKIM check of a message (with the key record it used) and the trusted Authentication-Results it bore."""

    message_id: str
    raw_sha256: str
    dkim: str  # pass | fail | no key | none | temperror
    dkim_domain: str | None
    dkim_selector: str | None
    dkim_key: str | None
    dkim_reason: str | None
    checked: str
    results: list[dict[str, str]] = field(default_factory=list)  # {"authserv_id", "method", "result"}


class Authentication(Database):
    """The message_auth table."""

    def record_authentication(self, message_id: str, raw_sha256: str, dkim: Mapping[str, Any],
                              results: Sequence[Mapping[str, str]], *, at: datetime) -> bool:
        """Keep how a message was authenticated on arrival; False when it was kept already (the first stays)."""
        row = {"message_id": message_id, "raw_sha256": raw_sha256, "dkim": str(dkim.get("result") or "none"),
               "dkim_domain": dkim.get("domain"), "dkim_selector": dkim.get("selector"),
               "dkim_key": dkim.get("key_record"), "dkim_reason": dkim.get("reason") or None,
               "results": _json([dict(r) for r in results]), "checked": utc_iso(at)}
        with self._write() as conn:
            return _insert_ignore(conn, schema.message_auth, row)

    def authentication(self, message_id: str) -> AuthRecord | None:
        """How a message was authenticated when it arrived, or None when nothing was kept for it."""
        with self._read() as conn:
            row = conn.execute(select(schema.message_auth)
                               .where(schema.message_auth.c.message_id == message_id)).first()
        if row is None:
            return None
        data = row._asdict()
        data["results"] = json.loads(data["results"])
        return AuthRecord(**data)
