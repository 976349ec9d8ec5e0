"""The IMAP mailbox: imap-tools reads and files mail, smtplib sends it, and a copy goes to Sent by APPEND.

Settings (`ImapSettings`, filled by the config layer; passwords come from the environment, never a file):

- `host`, `port`, `security`: the IMAP server; ``tls`` (implicit, port 993), ``starttls`` (port 143) or
  ``plain`` (no encryption: refused unless the host is this machine).
- `username`, `password`: the IMAP login; `address`: the seller's address, the SMTP envelope sender
  (default: the username when it is an address, else the message's From).
- `smtp_host`, `smtp_port`, `smtp_security`: the SMTP server (default: the IMAP host; ``starttls`` on 587,
  ``tls`` on 465, ``plain`` on 25); `smtp_username`, `smtp_password` (default: the IMAP login; an empty
  username means no SMTP AUTH).
- `folder`: where new mail is read (INBOX); `sent_folder`, `drafts_folder`: found by their special-use flags
  when not given, else "Sent" and "Drafts"; `append_sent`: file a copy of sent mail in Sent (turn off for
  servers that do it themselves, like Gmail and Exchange Online).
- `first_sync`: ``unseen`` (default: the very first poll skips mail already read) or ``all``.
- `cafile`: a CA bundle to trust instead of the system's (a company CA, a test server); `timeout`: seconds.

The key of a fetched message is ``"{UIDVALIDITY}:{UID}"``. The place in the folder (its UIDVALIDITY and the last
UID handed over) is kept in the SyncState, so a poll asks the server only for UIDs above it and costs the same
however much mail the folder holds; when UIDVALIDITY changes, the folder is read again from the start and the
caller deduplicates by Message-ID.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import io
import ipaddress
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from copy import deepcopy
from dataclasses import dataclass, field, fields
from email import message_from_bytes
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import getaddresses, make_msgid, parseaddr
from typing import Any, TypeVar

from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError, MailboxLoginError
from imap_tools.utils import encode_folder

from pipeline.errors import ConfigError, MailboxError
from pipeline.mailbox.base import PROCESSED, Fetched, NotFiledError, SyncState

log = logging.getLogger(__name__)

SECURITY = ("tls", "starttls", "plain")
FIRST_SYNC = ("unseen", "all")
IMAP_PORTS = {"tls": 993, "starttls": 143, "plain": 143}
SMTP_PORTS = {"tls": 465, "starttls": 587, "plain": 25}
FETCH_CHUNK = 25  # messages per UID FETCH: few round trips, bounded memory

T = TypeVar("T")
_UID_IN_FETCH = re.compile(rb"UID (\d+)")


@dataclass(frozen=True)
class ImapSettings:
    """Where the seller's IMAP and SMTP servers are and how to sign in to them."""

    host: str
    username: str
    password: str = field(repr=False)
    port: int | None = None
    security: str = "tls"
    address: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    folder: str = "INBOX"
    sent_folder: str | None = None
    drafts_folder: str | None = None
    append_sent: bool = True
    first_sync: str = "unseen"
    cafile: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], *, password: str | None = None, smtp_password: str | None = None
    ) -> ImapSettings:
        """Settings from the [mailbox] table; the passwords come separately, from the environment variables it names
        (`password_env`, `smtp_password_env`)."""
        types = {f.name: f.type for f in fields(cls)}
        values = {k: v for k, v in options.items() if k != "backend" and not k.endswith("_env")}
        unknown = sorted(set(values) - set(types) | set(values) & {"password", "smtp_password"})
        if unknown:
            raise ConfigError(f"[mailbox] has settings the imap backend does not know: {', '.join(unknown)}",
                              hint="passwords come from environment variables (password_env); see the commented "
                              "[mailbox] section of config/mutualplan.toml")
        for required in ("host", "username"):
            if not values.get(required):
                raise ConfigError(f"[mailbox] {required} is missing for the imap backend")
        if password is None:
            raise ConfigError("[mailbox] password_env is missing for the imap backend",
                              hint='name the environment variable that holds the password: password_env = "..."')
        kinds = {"int | None": (int, "a whole number"), "float": ((int, float), "a number"),
                 "bool": (bool, "true or false")}
        for name, value in values.items():
            wanted, what = kinds.get(str(types[name]), (str, "a string"))
            if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
                raise ConfigError(f"[mailbox] {name} = {value!r} must be {what}")
        return cls(**values, password=password, smtp_password=smtp_password)

    def check(self) -> None:
        """Raise ConfigError naming the first setting that cannot work."""
        for what, value in (("security", self.security), ("smtp_security", self.smtp_security)):
            if value not in SECURITY:
                raise ConfigError(f"imap {what} {value!r} is not one of {', '.join(SECURITY)}")
        if self.first_sync not in FIRST_SYNC:
            raise ConfigError(f"imap first_sync {self.first_sync!r} is not one of {', '.join(FIRST_SYNC)}")
        if not self.host:
            raise ConfigError("no IMAP host is set", hint="Set host in the [mailbox] table of the settings.")
        if not self.username or not self.password:
            raise ConfigError(
                f"no IMAP {'username' if not self.username else 'password'} for {self.host}",
                hint="The password comes from the environment variable the settings name, never from a file.",
            )
        for what, host, security in (
            ("security", self.host, self.security),
            ("smtp_security", self.smtp_host or self.host, self.smtp_security),
        ):
            if security == "plain" and not _is_loopback(host):
                raise ConfigError(
                    f"imap {what} = 'plain' would send the password unencrypted to {host}",
                    hint="Use 'tls' or 'starttls'; 'plain' is for a server on this machine only.",
                )

    @property
    def imap_port(self) -> int:
        return self.port or IMAP_PORTS[self.security]

    @property
    def smtp_server(self) -> tuple[str, int]:
        return self.smtp_host or self.host, self.smtp_port or SMTP_PORTS[self.smtp_security]


class ImapMailbox:
    """A seller's mailbox over IMAP and SMTP; one IMAP connection, opened on first use and kept."""

    def __init__(self, settings: ImapSettings, state: SyncState, *, name: str = "imap") -> None:
        settings.check()
        self.name = name
        self.settings = settings
        self._state = state
        self._state_key = f"imap:{settings.username.lower()}@{settings.host}:{settings.folder}"
        self._box: MailBox | MailBoxStartTls | MailBoxUnencrypted | None = None
        self._capabilities: set[str] = set()
        self._selected: tuple[str, int] | None = None  # (folder, UIDVALIDITY) of the read-write selection
        self._folders: set[str] = set()
        self._special: dict[str, str] = {}
        # Message-ID -> (UIDVALIDITY, UIDNEXT) of Sent when it was last searched for in vain.
        self._sent_searched: dict[str, tuple[int, int]] = {}

    def close(self) -> None:
        """Log out (quietly: the connection may be gone already)."""
        box, self._box, self._selected = self._box, None, None
        if box is not None:
            with contextlib.suppress(Exception):
                box.logout()

    def __enter__(self) -> ImapMailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading -------------------------------------------------------------------------------------

    def fetch(self) -> Iterator[Fetched]:
        """Messages with a UID above the last one handed over, oldest first; the place advances at the end.

        A crash or an error before the last message is taken leaves the place where it was, so the next poll
        offers again what was not acknowledged (acknowledged mail has left the folder).
        """
        validity, last, uids = self._call("read new mail from", self._new_uids)
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = uids[start:start + FETCH_CHUNK]
            bodies = self._call("read new mail from", lambda c=chunk: self._fetch_bodies(validity, c))
            for uid in chunk:
                if uid in bodies:  # else expunged meanwhile: nothing left to hand over
                    yield Fetched(key=f"{validity}:{uid}", raw=bodies[uid])
        self._state.set_state(self._state_key, f"{validity}:{max([last, *uids])}")

    def ack(self, key: str, folder: str | None = PROCESSED) -> None:
        """Mark the message seen and move it to `folder` (created if missing); a message already gone is fine.

        `folder=None` touches nothing: the message stays as the seller left it (unread if it was), and the
        place kept in the SyncState is what keeps it from being fetched again.
        """
        validity, uid = _split_key(key)
        if folder is None:
            return
        self._call("file a message in", lambda: self._move(validity, uid, folder))

    def _move(self, validity: int, uid: int, folder: str) -> None:
        """Seen, then MOVE (or COPY, \\Deleted and UID EXPUNGE of just this message where MOVE is missing)."""
        current, _ = self._select(self.settings.folder, reuse=True)
        if current != validity:
            raise MailboxError(
                f"cannot file message {validity}:{uid}: {self.settings.folder} on {self.settings.host} was rebuilt "
                f"(UIDVALIDITY is now {current})",
                transient=True,
                hint="Nothing is lost: the next poll reads the folder again and finds the message anew.",
            )
        self._ensure_folder(folder)
        client = self._client()
        _ok(client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)"), "mark it seen")
        target = encode_folder(folder)
        if "MOVE" in self._capabilities:
            _ok(client.uid("MOVE", str(uid), target), f"move it to {folder}")
        else:
            _ok(client.uid("COPY", str(uid), target), f"copy it to {folder}")
            _ok(client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), "mark it deleted")
            if "UIDPLUS" in self._capabilities:
                _ok(client.uid("EXPUNGE", str(uid)), "expunge it")
            else:
                _ok(client.expunge(), "expunge it")

    def was_sent(self, message_id: str) -> bool:
        """Whether Sent holds a message with this Message-ID (IMAP SEARCH HEADER, done by the server)."""
        wanted = message_id.strip()
        wanted = wanted if wanted.startswith("<") else f"<{wanted}>"
        return self._call("look in Sent of", lambda: self._search_sent(wanted))

    def _search_sent(self, wanted: str) -> bool:
        """SEARCH HEADER Message-ID in Sent, opened read-only (EXAMINE) so nothing there changes.

        Only what Sent gained since the last vain search for this Message-ID is searched: UIDs only grow, so
        "not there" stays true of the UIDs already searched (until UIDVALIDITY changes). Asking about each
        draft on every poll then costs a STATUS, however full Sent is, and leaves the Inbox selected.
        """
        sent = self._special_folder("sent")
        if not self._folder_exists(sent):
            return False
        client = self._client()
        typ, data = client.status(encode_folder(sent), "(UIDVALIDITY UIDNEXT)")
        _ok((typ, data), f"read the status of {sent}")
        text = data[0].decode(errors="replace") if data and isinstance(data[0], bytes) else ""
        validity, uid_next = re.search(r"UIDVALIDITY (\d+)", text), re.search(r"UIDNEXT (\d+)", text)
        place = (int(validity.group(1)), int(uid_next.group(1))) if validity and uid_next else None
        before = self._sent_searched.get(wanted)
        if place and before and before[0] == place[0] and place[1] <= before[1]:
            return False  # nothing reached Sent since the last look
        _ok(client.select(encode_folder(sent), readonly=True), f"open {sent}")
        self._selected = None
        criteria = ["HEADER", "Message-ID", _quote(wanted)]
        if place and before and before[0] == place[0]:
            criteria = ["UID", f"{before[1]}:*", *criteria]
        typ, data = client.uid("SEARCH", *criteria)
        _ok((typ, data), f"search {sent}")
        # Leave Sent (CLOSE after EXAMINE removes nothing): STATUS of a selected folder may be stale.
        _ok(client.close(), f"leave {sent}")
        found = bool(data and data[0] and data[0].split())
        if place and not found:
            self._sent_searched[wanted] = place
        return found

    # --- writing -------------------------------------------------------------------------------------

    def send(self, message: EmailMessage) -> None:
        """Send by SMTP, then APPEND the same bytes to Sent (Bcc kept only in the Sent copy).

        A draft with the same Message-ID is what goes, the seller's edits included, as their mail client would
        send it; and it leaves Drafts, so that it cannot go a second time from there.
        """
        _ensure_message_id(message, self._sender(message))
        try:
            drafts, uids, draft = self._call("look in Drafts of", lambda: self._drafts(str(message["Message-ID"])))
        except MailboxError as exc:
            # Not a reason to hold the mail back: SMTP may be up while IMAP is not (the message as rendered goes).
            log.warning("imap: cannot look in Drafts before sending %s: %s", message["Message-ID"], exc)
            drafts, uids, draft = "", [], None
        if draft is not None:
            message = message_from_bytes(draft, policy=SMTP)  # type: ignore[assignment]
        full = _to_bytes(message)
        recipients = [addr for _, addr in getaddresses(message.get_all("To", []) + message.get_all("Cc", [])
                                                      + message.get_all("Bcc", [])) if addr]
        if not recipients:
            raise MailboxError("the message has no recipients (To, Cc or Bcc)")
        on_the_wire = _without_bcc(message) if message.get_all("Bcc") else full
        refused = self._smtp_send(self._sender(message), recipients, on_the_wire)
        if self.settings.append_sent:
            self._file_sent(full, message)
        if refused:
            raise MailboxError(
                f"sent, but {self.settings.smtp_server[0]} refused "
                + ", ".join(f"{addr} ({code} {text.decode(errors='replace')})"
                            for addr, (code, text) in refused.items()),
                hint="Check those addresses; the others got the message, so do not send it again.",
            )
        if uids:
            try:
                self._call("take the sent draft out of", lambda: self._delete(drafts, uids))
            except MailboxError as exc:
                # Sent and filed: a draft left behind is the seller's to delete, not a reason to send again.
                log.warning("imap: %s was sent, but its draft is still in %s: %s", message["Message-ID"], drafts, exc)

    def save_draft(self, message: EmailMessage) -> None:
        """APPEND the message to Drafts with the \\Draft flag; a draft with its Message-ID already there is kept as
        is (saved before a crash, or edited by the seller since)."""
        _ensure_message_id(message, self._sender(message))
        if self._call("look in Drafts of", lambda: self._drafts(str(message["Message-ID"])))[1]:
            return
        with self._errors("save a draft in"):
            drafts = self._special_folder("drafts")
            self._ensure_folder(drafts)
            self._append(drafts, _to_bytes(message), (r"\Draft", r"\Seen"))

    # --- inside: IMAP --------------------------------------------------------------------------------

    def _drafts(self, message_id: str) -> tuple[str, list[int], bytes | None]:
        """Drafts with this Message-ID: (the Drafts folder, their UIDs, the bytes of the newest, or None)."""
        wanted = message_id.strip() if message_id.strip().startswith("<") else f"<{message_id.strip()}>"
        folder = self._special_folder("drafts")
        if not self._folder_exists(folder):
            return folder, [], None
        client = self._client()
        self._selected = None
        _ok(client.select(encode_folder(folder), readonly=True), f"open {folder}")
        typ, data = client.uid("SEARCH", "HEADER", "Message-ID", _quote(wanted))
        _ok((typ, data), f"search {folder}")
        uids = sorted(int(u) for u in (data[0] or b"").split()) if data else []
        if not uids:
            return folder, [], None
        typ, data = client.uid("FETCH", str(uids[-1]), "(BODY.PEEK[])")
        _ok((typ, data), f"read a draft in {folder}")
        raw = next((item[1] for item in data or [] if isinstance(item, tuple) and len(item) == 2), None)
        return folder, uids, raw

    def _delete(self, folder: str, uids: list[int]) -> None:
        """Delete these messages of `folder` (\\Deleted, then UID EXPUNGE of just them where the server can)."""
        client = self._client()
        self._selected = None
        _ok(client.select(encode_folder(folder)), f"open {folder}")
        ids = ",".join(map(str, uids))
        _ok(client.uid("STORE", ids, "+FLAGS.SILENT", r"(\Deleted)"), "mark the draft deleted")
        _ok(client.uid("EXPUNGE", ids) if "UIDPLUS" in self._capabilities else client.expunge(), "expunge it")

    def _new_uids(self) -> tuple[int, int, list[int]]:
        """Search the folder: (UIDVALIDITY, the last UID handed over, the UIDs to hand over).

        On a kept connection with the folder still selected, NOOP brings in new mail and no SELECT is
        needed (SELECT costs more as the folder grows); UIDVALIDITY cannot change under a selection, a
        server that rebuilds the folder closes the connection instead.
        """
        s = self.settings
        saved = self._saved_place()
        if saved is not None and self._selected and self._selected[0] == s.folder:
            _ok(self._client().noop(), "check for new mail")
            validity, uid_next = self._select(s.folder, reuse=True)
        else:
            validity, uid_next = self._select(s.folder)
        if saved is not None and saved[0] == validity:
            last = saved[1]
            uids = [u for u in self._search(f"UID {last + 1}:*") if u > last]
        elif saved is None and s.first_sync == "unseen":
            # The very first poll: mail already read is the seller's, not ours to process.
            last = uid_next - 1
            uids = [u for u in self._search("UNSEEN") if u < uid_next]
        else:
            if saved is not None:
                log.warning(
                    "imap: UIDVALIDITY of %s changed (%s -> %s); reading the folder again",
                    s.folder, saved[0], validity,
                )
            last = 0
            uids = self._search("ALL")
        return validity, last, sorted(uids)

    def _call(self, doing: str, operation: Callable[[], T]) -> T:
        """Run an IMAP operation; if a kept connection turns out dead (idle timeout, server restart),
        reconnect and run it once more."""
        reused = self._box is not None
        try:
            with self._errors(doing):
                return operation()
        except MailboxError as exc:
            if not (reused and exc.transient and self._box is None):
                raise
            log.info("imap: connection to %s lost (%s); reconnecting", self.settings.host, exc.message)
        with self._errors(doing):
            return operation()

    def _client(self) -> imaplib.IMAP4:
        return self._connect().client

    def _connect(self) -> MailBox | MailBoxStartTls | MailBoxUnencrypted:
        if self._box is not None:
            return self._box
        s = self.settings
        if s.security == "tls":
            box: MailBox | MailBoxStartTls | MailBoxUnencrypted = MailBox(
                s.host, s.imap_port, timeout=s.timeout, ssl_context=self._tls_context()
            )
        elif s.security == "starttls":
            box = MailBoxStartTls(s.host, s.imap_port, timeout=s.timeout, ssl_context=self._tls_context())
        else:
            box = MailBoxUnencrypted(s.host, s.imap_port, timeout=s.timeout)
        try:
            box.login(s.username, s.password, initial_folder=None)
            # Servers announce more after login (MOVE, UIDPLUS...) than in their greeting.
            typ, data = box.client.capability()
            _ok((typ, data), "read the capabilities")
            self._capabilities = set(data[0].decode().upper().split())
        except BaseException:
            with contextlib.suppress(Exception):
                box.client.shutdown()
            raise
        self._box = box
        self._selected = None
        return box

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.cafile)

    def _select(self, folder: str, *, reuse: bool = False) -> tuple[int, int]:
        """SELECT `folder` read-write; returns (UIDVALIDITY, UIDNEXT)."""
        if reuse and self._selected and self._selected[0] == folder:
            return self._selected[1], 0
        client = self._client()
        self._selected = None
        _ok(client.select(encode_folder(folder)), f"open {folder}")
        validity = _int_response(client, "UIDVALIDITY")
        uid_next = _int_response(client, "UIDNEXT")
        if validity is None or uid_next is None:
            typ, data = client.status(encode_folder(folder), "(UIDVALIDITY UIDNEXT)")
            _ok((typ, data), f"read the status of {folder}")
            text = data[0].decode() if data and data[0] else ""
            validity = int(re.search(r"UIDVALIDITY (\d+)", text).group(1))  # type: ignore[union-attr]
            uid_next = int(re.search(r"UIDNEXT (\d+)", text).group(1))  # type: ignore[union-attr]
        self._selected = (folder, validity)
        return validity, uid_next

    def _search(self, criteria: str) -> list[int]:
        typ, data = self._client().uid("SEARCH", criteria)
        _ok((typ, data), "search for new mail")
        return [int(u) for u in (data[0] or b"").split()] if data else []

    def _fetch_bodies(self, validity: int, uids: list[int]) -> dict[int, bytes]:
        folder = self.settings.folder
        current, _ = self._select(folder, reuse=True)
        if current != validity:
            # Rebuilt between the search and now: this poll ends, the next one starts over.
            raise MailboxError(f"{folder} was rebuilt while reading it", transient=True)
        typ, data = self._client().uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
        _ok((typ, data), "read new mail")
        bodies: dict[int, bytes] = {}
        for item in data or []:
            if isinstance(item, tuple) and len(item) == 2:
                match = _UID_IN_FETCH.search(item[0])
                if match:
                    bodies[int(match.group(1))] = item[1]
        return bodies

    def _saved_place(self) -> tuple[int, int] | None:
        saved = self._state.get_state(self._state_key)
        if not saved:
            return None
        try:
            validity, last = saved.split(":")
            return int(validity), int(last)
        except ValueError:
            log.warning("imap: unreadable saved place %r; reading %s from the start", saved, self.settings.folder)
            return None

    def _folder_list(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(f.name, f.flags) for f in self._connect().folder.list()]

    def _folder_exists(self, name: str) -> bool:
        if name in self._folders:
            return True
        if any(found == name for found, _ in self._folder_list()):
            self._folders.add(name)
            return True
        return False

    def _ensure_folder(self, name: str) -> None:
        if self._folder_exists(name):
            return
        box = self._connect()
        _ok(box.client.create(encode_folder(name)), f"create the folder {name}")
        with contextlib.suppress(imaplib.IMAP4.error, ImapToolsError):
            box.folder.subscribe(name, True)  # so mail clients show it
        self._folders.add(name)

    def _special_folder(self, kind: str) -> str:
        """Sent or Drafts: as set, else the folder the server flags \\Sent or \\Drafts, else the usual name."""
        configured = {"sent": self.settings.sent_folder, "drafts": self.settings.drafts_folder}[kind]
        if configured:
            return configured
        if kind not in self._special:
            flag = {"sent": "\\SENT", "drafts": "\\DRAFTS"}[kind]
            folders = self._folder_list()
            flagged = [name for name, flags in folders if flag in {f.upper() for f in flags}]
            self._special[kind] = flagged[0] if flagged else {"sent": "Sent", "drafts": "Drafts"}[kind]
        return self._special[kind]

    def _append(self, folder: str, raw: bytes, flags: tuple[str, ...]) -> None:
        when = dt.datetime.now(dt.UTC)
        _ok(self._client().append(encode_folder(folder), f"({' '.join(flags)})", when, raw), f"save to {folder}")

    def _file_sent(self, raw: bytes, message: EmailMessage) -> None:
        """APPEND to Sent after a send; one reconnect and retry, else NotFiledError (the mail did go out)."""
        for attempt in (1, 2):
            try:
                with self._errors("file the sent message in"):
                    sent = self._special_folder("sent")
                    self._ensure_folder(sent)
                    self._append(sent, raw, (r"\Seen",))
                return
            except MailboxError as exc:
                if attempt == 2 or not exc.transient:
                    raise NotFiledError(
                        f"{message['Message-ID']} was sent, but its copy could not be put in Sent: {exc.message}",
                        hint="Do not send it again; file a copy in Sent by hand if the record matters.",
                    ) from exc

    # --- inside: SMTP --------------------------------------------------------------------------------

    def _sender(self, message: EmailMessage) -> str:
        if self.settings.address:
            return self.settings.address
        if "@" in self.settings.username:
            return self.settings.username
        return parseaddr(str(message.get("From", "")))[1]

    def _smtp_send(self, sender: str, recipients: list[str], raw: bytes) -> dict[str, tuple[int, bytes]]:
        s = self.settings
        host, port = s.smtp_server
        user = s.username if s.smtp_username is None else s.smtp_username
        password = s.smtp_password if s.smtp_password is not None else s.password
        with self._smtp_errors(host, port, user):
            smtp = (
                smtplib.SMTP_SSL(host, port, timeout=s.timeout, context=self._tls_context())
                if s.smtp_security == "tls"
                else smtplib.SMTP(host, port, timeout=s.timeout)
            )
            try:
                smtp.ehlo()
                if s.smtp_security == "starttls":
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                if user:
                    smtp.login(user, password)
                refused = smtp.sendmail(sender, recipients, raw)
            finally:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
        return refused

    @contextlib.contextmanager
    def _smtp_errors(self, host: str, port: int, user: str) -> Iterator[None]:
        where = f"the SMTP server {host}:{port}"
        try:
            yield
        except smtplib.SMTPAuthenticationError as exc:
            raise MailboxError(
                f"{where} refused the login of {user}: {exc.smtp_code} {_text(exc.smtp_error)}",
                hint="Check the SMTP username and the password in the environment.",
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise MailboxError(
                f"{where} does not offer what smtp_security = {self.settings.smtp_security!r} needs: {exc}",
                hint="Check smtp_security and smtp_port (starttls on 587, tls on 465).",
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(f"{a} ({c} {_text(t)})" for a, (c, t) in exc.recipients.items())
            raise MailboxError(
                f"{where} refused every recipient: {refused}",
                transient=all(400 <= c < 500 for c, _ in exc.recipients.values()),
                hint="Check the addresses in the plan's contacts.",
            ) from exc
        except smtplib.SMTPResponseException as exc:
            transient = 400 <= exc.smtp_code < 500
            raise MailboxError(
                f"{where} refused the message: {exc.smtp_code} {_text(exc.smtp_error)}",
                transient=transient,
                hint="It will be retried." if transient else "Check the sender address and the message size.",
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise MailboxError(
                f"cannot verify the certificate of {where}: {exc.verify_message}",
                hint="Check smtp_host is the name on the certificate, or set cafile to your company's CA.",
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise MailboxError(
                f"cannot reach {where}: {_describe(exc)}",
                transient=True,
                hint="Check smtp_host, smtp_port and smtp_security, and that the server is up; "
                "it will be retried.",
            ) from exc

    # --- errors --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn what imaplib, imap-tools and sockets raise into MailboxError, dropping a broken connection."""
        s = self.settings
        where = f"the IMAP server {s.host}:{s.imap_port}"
        try:
            yield
        except MailboxError:
            raise
        except MailboxLoginError as exc:
            self._drop()
            raise MailboxError(
                f"{where} refused the login of {s.username}: {_response_text(exc)}",
                hint="Check the username and the IMAP password in the environment.",
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            self._drop()
            raise MailboxError(
                f"cannot verify the certificate of {where}: {exc.verify_message}",
                hint="Check host is the name on the certificate, or set cafile to your company's CA.",
            ) from exc
        except (imaplib.IMAP4.abort, OSError, EOFError) as exc:
            self._drop()
            raise MailboxError(
                f"cannot {doing} {where}: {_describe(exc)}",
                transient=True,
                hint="Check host, port and security, and that the server is up; it will be retried.",
            ) from exc
        except (imaplib.IMAP4.error, ImapToolsError) as exc:
            self._drop()
            raise MailboxError(f"{where} refused to {doing.split(' ')[0]}: {_response_text(exc)}") from exc

    def _drop(self) -> None:
        box, self._box, self._selected = self._box, None, None
        if box is not None:
            with contextlib.suppress(Exception):
                box.client.shutdown()


def _split_key(key: str) -> tuple[int, int]:
    try:
        validity, uid = key.split(":")
        return int(validity), int(uid)
    except ValueError:
        raise MailboxError(f"{key!r} is not a key of this IMAP mailbox (UIDVALIDITY:UID)") from None


def _ok(result: tuple, doing: str) -> tuple:
    typ, data = result
    if typ != "OK":
        raise MailboxError(f"the IMAP server would not {doing}: {_text(data)}")
    return result


def _int_response(client: imaplib.IMAP4, name: str) -> int | None:
    _, data = client.response(name)
    try:
        return int(data[0]) if data and data[0] is not None else None
    except (TypeError, ValueError):
        return None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return " ".join(_text(v) for v in value if v is not None)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _response_text(exc: Exception) -> str:
    result = getattr(exc, "command_result", None)
    return _text(result[1]) if result else str(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ensure_message_id(message: EmailMessage, sender: str) -> None:
    if not message.get("Message-ID"):
        domain = sender.rpartition("@")[2] or None
        message["Message-ID"] = make_msgid(domain=domain)


def _to_bytes(message: EmailMessage) -> bytes:
    """The bytes SMTP and IMAP both want: CRLF line endings."""
    policy = message.policy if isinstance(message.policy, EmailPolicy) else SMTP
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=policy.clone(linesep="\r\n")).flatten(message)
    return buffer.getvalue()


def _without_bcc(message: EmailMessage) -> bytes:
    copy = deepcopy(message)
    del copy["Bcc"]
    return _to_bytes(copy)
