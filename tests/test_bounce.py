"""Delivery status reports read into who did not get which message."""

from __future__ import annotations

from pipeline.replies.bounce import delivery_failure

V1 = "plan.acme-northwind-2027.v1@northwind.example"

POSTFIX = f"""\
From: Mail Delivery System <MAILER-DAEMON@mx.northwind.example>
To: jordan.lee@northwind.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <20270112.1@mx.northwind.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

This is the mail system at host mx.northwind.example.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.northwind.example
Arrival-Date: Tue, 12 Jan 2027 09:02:00 -0800

Final-Recipient: rfc822; raj.patel@acme.example
Original-Recipient: rfc822;raj.patel@acme.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <raj.patel@acme.example>: Recipient address rejected: User unknown

Final-Recipient: rfc822; kim.osei@acme.example
Action: delivered
Status: 2.0.0

--b1
Content-Type: message/rfc822

From: Jordan Lee <jordan.lee@northwind.example>
Message-ID: <{V1}>
Subject: Mutual Plan: Acme Corp and Northwind Analytics (version 1)

body
--b1--
""".encode()


def test_a_postfix_report_names_the_failed_recipient_the_status_and_the_message() -> None:
    failure = delivery_failure(POSTFIX)
    assert failure.recipients == ("raj.patel@acme.example",)  # Kim's copy was delivered
    assert failure.status == "5.1.1"
    assert failure.diagnostic.startswith("550 5.1.1")
    assert failure.original_id == V1
    assert failure.describe().startswith("delivery to raj.patel@acme.example failed (5.1.1): 550")


def test_returned_headers_only() -> None:
    raw = POSTFIX.replace(b"Content-Type: message/rfc822", b"Content-Type: text/rfc822-headers")
    assert delivery_failure(raw).original_id == V1


def test_a_plain_bounce_with_x_failed_recipients_and_quoted_headers() -> None:
    raw = (
        b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        b"X-Failed-Recipients: raj.patel@acme.example\n"
        b"Subject: Delivery Status Notification (Failure)\n\n"
        b"Your message wasn't delivered.\n\n----- Original message -----\n\n"
        b"Message-ID: <" + V1.encode() + b">\nSubject: Mutual Plan\n"
    )
    failure = delivery_failure(raw)
    assert failure.recipients == ("raj.patel@acme.example",)
    assert failure.original_id == V1
    assert failure.status == ""


def test_garbage_never_raises() -> None:
    for raw in (b"", b"\x00\xff" * 100, b"Content-Type: multipart/report; boundary=x\n\n--x\n"
                b"Content-Type: message/delivery-status\n\n\n\n--x--\n"):
        failure = delivery_failure(raw)
        assert failure.recipients == () and failure.original_id is None
