"""One IMAP connection to the seller's server: opened on first use and kept, folders, and errors people can read."""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import TypeVar

from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError, MailboxLoginError
from imap_tools.utils import encode_folder as _utf7_quoted

from pipeline.errors import MailboxError
from pipeline.mailbox.imap.settings import ImapSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class ImapConnection:
    """The IMAP session of one mailbox: the connection, what the server can do, and the folders it has."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self.box: MailBox | MailBoxStartTls | MailBoxUnencrypted | None = None
        self.capabilities: set[str] = set()
        self.selected: tuple[str, int] | None = None  # (folder, UIDVALIDITY) of the read-write selection
        self._folders: set[str] = set()
        self._special: dict[str, str] = {}

    def close(self) -> None:
        """Log out (quietly: the connection may be gone already)."""
        box, self.box, self.selected = self.box, None, None
        if box is not None:
            with contextlib.suppress(Exception):
                box.logout()

    def call(self, doing: str, operation: Callable[[], T]) -> T:
        """Run an IMAP operation; if a kept connection turns out dead (idle timeout, server restart),
        reconnect and run it once more."""
        reused = self.box is not None
        try:
            with self.errors(doing):
                return operation()
        except MailboxError as exc:
            if not (reused and exc.transient and self.box is None):
                raise
            log.info("imap: connection to %s lost (%s); reconnecting", self.settings.host, exc.message)
        with self.errors(doing):
            return operation()

    def client(self) -> imaplib.IMAP4:
        """The imaplib client of the open connection, connecting first if there is none."""
        return self.connect().client

    def connect(self) -> MailBox | MailBoxStartTls | MailBoxUnencrypted:
        """The open connection, or a new one logged in (with the capabilities it announces after login)."""
        if self.box is not None:
            return self.box
        s = self.settings
        if s.security == "tls":
            box: MailBox | MailBoxStartTls | MailBoxUnencrypted = MailBox(
                s.host, s.imap_port, timeout=s.timeout, ssl_context=s.tls_context()
            )
        elif s.security == "starttls":
            box = MailBoxStartTls(s.host, s.imap_port, timeout=s.timeout, ssl_context=s.tls_context())
        else:
            box = MailBoxUnencrypted(s.host, s.imap_port, timeout=s.timeout)
        try:
            box.login(s.username, s.password, initial_folder=None)
            # Servers announce more after login (MOVE, UIDPLUS...) than in their greeting.
            typ, data = box.client.capability()
            ok((typ, data), "read the capabilities")
            self.capabilities = set(data[0].decode().upper().split())
        except BaseException:
            with contextlib.suppress(Exception):
                box.client.shutdown()
            raise
        self.box = box
        self.selected = None
        return box

    def select(self, folder: str, *, reuse: bool = False) -> tuple[int, int]:
        """SELECT `folder` read-write; returns (UIDVALIDITY, UIDNEXT)."""
        if reuse and self.selected and self.selected[0] == folder:
            return self.selected[1], 0
        client = self.client()
        self.selected = None
        ok(client.select(encode_folder(folder)), f"open {folder}")
        validity = _int_response(client, "UIDVALIDITY")
        uid_next = _int_response(client, "UIDNEXT")
        if validity is None or uid_next is None:
            typ, data = client.status(encode_folder(folder), "(UIDVALIDITY UIDNEXT)")
            ok((typ, data), f"read the status of {folder}")
            text = data[0].decode() if data and data[0] else ""
            named = re.search(r"UIDVALIDITY (\d+)", text), re.search(r"UIDNEXT (\d+)", text)
            if named[0] is None or named[1] is None:
                raise MailboxError(f"the IMAP server did not tell the UIDVALIDITY and UIDNEXT of {folder}: {text}")
            validity, uid_next = int(named[0].group(1)), int(named[1].group(1))
        self.selected = (folder, validity)
        return validity, uid_next

    def delete(self, folder: str, uids: list[int]) -> None:
        """Delete these messages of `folder`, and no other (see delete_selected)."""
        client = self.client()
        self.selected = None
        ok(client.select(encode_folder(folder)), f"open {folder}")
        self.delete_selected(folder, uids)

    def delete_selected(self, folder: str, uids: list[int]) -> None:
        """\\Deleted on these messages of the folder selected read-write, then an expunge of just them.

        UID EXPUNGE (UIDPLUS) removes only these. Without it, EXPUNGE removes every message marked deleted, so
        it is used only when no other message is: otherwise ours stay marked, for the seller's client to expunge.
        """
        client = self.client()
        ids = ",".join(map(str, uids))
        ok(client.uid("STORE", ids, "+FLAGS.SILENT", r"(\Deleted)"), "mark the draft deleted")
        if "UIDPLUS" in self.capabilities:
            ok(client.uid("EXPUNGE", ids), "expunge it")
            return
        _, data = ok(client.uid("SEARCH", "DELETED"), f"search {folder}")
        others = {int(u) for u in (data[0] or b"").split()} - set(uids) if data else set()
        if others:
            log.info("imap: %s holds other messages marked deleted; ours stay marked, not expunged", folder)
            return
        ok(client.expunge(), "expunge it")

    # --- folders -------------------------------------------------------------------------------------

    def folder_list(self) -> list[tuple[str, tuple[str, ...]]]:
        """Every folder on the server with its flags."""
        return [(f.name, f.flags) for f in self.connect().folder.list()]

    def folder_exists(self, name: str) -> bool:
        """Whether the server has this folder (remembered once seen)."""
        if name in self._folders:
            return True
        if any(found == name for found, _ in self.folder_list()):
            self._folders.add(name)
            return True
        return False

    def ensure_folder(self, name: str) -> None:
        """Create the folder (and subscribe to it) unless it exists."""
        if self.folder_exists(name):
            return
        box = self.connect()
        ok(box.client.create(encode_folder(name)), f"create the folder {name}")
        with contextlib.suppress(imaplib.IMAP4.error, ImapToolsError):
            box.folder.subscribe(name, True)  # so mail clients show it
        self._folders.add(name)

    def special_folder(self, kind: str) -> str:
        """Sent or Drafts: as set, else the folder the server flags \\Sent or \\Drafts, else the usual name."""
        configured = {"sent": self.settings.sent_folder, "drafts": self.settings.drafts_folder}[kind]
        if configured:
            return configured
        if kind not in self._special:
            flag = {"sent": "\\SENT", "drafts": "\\DRAFTS"}[kind]
            folders = self.folder_list()
            flagged = [name for name, flags in folders if flag in {f.upper() for f in flags}]
            self._special[kind] = flagged[0] if flagged else {"sent": "Sent", "drafts": "Drafts"}[kind]
        return self._special[kind]

    def append(self, folder: str, raw: bytes, flags: tuple[str, ...]) -> None:
        """APPEND `raw` to `folder` with these flags."""
        when = dt.datetime.now(dt.UTC)
        ok(self.client().append(encode_folder(folder), f"({' '.join(flags)})", when, raw), f"save to {folder}")

    # --- errors --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
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
                f"cannot {doing} {where}: {describe(exc)}",
                transient=True,
                hint="Check host, port and security, and that the server is up; it will be retried.",
            ) from exc
        except (imaplib.IMAP4.error, ImapToolsError) as exc:
            self._drop()
            raise MailboxError(f"{where} refused to {doing.split(' ')[0]}: {_response_text(exc)}") from exc

    def _drop(self) -> None:
        box, self.box, self.selected = self.box, None, None
        if box is not None:
            with contextlib.suppress(Exception):
                box.client.shutdown()


def ok(result: tuple, doing: str) -> tuple:
    """The IMAP command's (typ, data), or MailboxError when the server did not answer OK."""
    typ, data = result
    if typ != "OK":
        raise MailboxError(f"the IMAP server would not {doing}: {text(data)}")
    return result


def quote(value: str) -> str:
    """An IMAP quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_folder(folder: str) -> str:
    """A folder's name as an IMAP command argument: in modified UTF-7 and quoted, so all ASCII."""
    # imaplib takes str arguments (bytes work too, but its stubs say str) and encodes ASCII to the same bytes.
    return _utf7_quoted(folder).decode("ascii")


def text(value: object) -> str:
    """A server's answer (bytes, or lists of them) as text for a message."""
    if isinstance(value, list | tuple):
        return " ".join(text(v) for v in value if v is not None)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def describe(exc: BaseException) -> str:
    """What went wrong on the network, in a few words."""
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _int_response(client: imaplib.IMAP4, name: str) -> int | None:
    _, data = client.response(name)
    try:
        return int(data[0]) if data and data[0] is not None else None
    except (TypeError, ValueError):
        return None


def _response_text(exc: Exception) -> str:
    result = getattr(exc, "command_result", None)
    return text(result[1]) if result else str(exc)
