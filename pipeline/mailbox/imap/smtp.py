"""Sending by SMTP as the seller, and the bytes a message goes out as (CRLF, Bcc only in the Sent copy)."""

from __future__ import annotations

import contextlib
import io
import smtplib
import ssl
from collections.abc import Iterator
from copy import deepcopy
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import make_msgid

from pipeline.errors import MailboxError
from pipeline.mailbox.imap.connection import describe, text
from pipeline.mailbox.imap.settings import ImapSettings


def smtp_send(settings: ImapSettings, sender: str, recipients: list[str], raw: bytes) -> dict[str, tuple[int, bytes]]:
    """Hand `raw` to the SMTP server for these recipients; the ones it refused while taking the others."""
    s = settings
    host, port = s.smtp_server
    user = s.username if s.smtp_username is None else s.smtp_username
    password = s.smtp_password if s.smtp_password is not None else s.password
    with _smtp_errors(s, host, port, user):
        smtp = (
            smtplib.SMTP_SSL(host, port, timeout=s.timeout, context=s.tls_context())
            if s.smtp_security == "tls"
            else smtplib.SMTP(host, port, timeout=s.timeout)
        )
        try:
            smtp.ehlo()
            if s.smtp_security == "starttls":
                smtp.starttls(context=s.tls_context())
                smtp.ehlo()
            if user:
                smtp.login(user, password)
            refused = smtp.sendmail(sender, recipients, raw)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
    return refused


@contextlib.contextmanager
def _smtp_errors(settings: ImapSettings, host: str, port: int, user: str) -> Iterator[None]:
    where = f"the SMTP server {host}:{port}"
    try:
        yield
    except smtplib.SMTPAuthenticationError as exc:
        raise MailboxError(
            f"{where} refused the login of {user}: {exc.smtp_code} {text(exc.smtp_error)}",
            hint="Check the SMTP username and the password in the environment.",
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise MailboxError(
            f"{where} does not offer what smtp_security = {settings.smtp_security!r} needs: {exc}",
            hint="Check smtp_security and smtp_port (starttls on 587, tls on 465).",
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(f"{a} ({c} {text(t)})" for a, (c, t) in exc.recipients.items())
        raise MailboxError(
            f"{where} refused every recipient: {refused}",
            transient=all(400 <= c < 500 for c, _ in exc.recipients.values()),
            hint="Check the addresses in the plan's contacts.",
        ) from exc
    except smtplib.SMTPResponseException as exc:
        transient = 400 <= exc.smtp_code < 500
        raise MailboxError(
            f"{where} refused the message: {exc.smtp_code} {text(exc.smtp_error)}",
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
            f"cannot reach {where}: {describe(exc)}",
            transient=True,
            hint="Check smtp_host, smtp_port and smtp_security, and that the server is up; "
            "it will be retried.",
        ) from exc


def ensure_message_id(message: EmailMessage, sender: str) -> None:
    """Give the message a Message-ID in the sender's domain when it has none."""
    if not message.get("Message-ID"):
        domain = sender.rpartition("@")[2] or None
        message["Message-ID"] = make_msgid(domain=domain)


def to_bytes(message: EmailMessage) -> bytes:
    """The bytes SMTP and IMAP both want: CRLF line endings."""
    policy = message.policy if isinstance(message.policy, EmailPolicy) else SMTP
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=policy.clone(linesep="\r\n")).flatten(message)
    return buffer.getvalue()


def without_bcc(message: EmailMessage) -> bytes:
    """The message's bytes without its Bcc header: what recipients get."""
    copy = deepcopy(message)
    del copy["Bcc"]
    return to_bytes(copy)
