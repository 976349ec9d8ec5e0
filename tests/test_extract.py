"""Extraction: the new text above a quote header, quote headers in many languages, inline answers and thread keys."""

from __future__ import annotations

from html import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replies_expect import REPLIES

from pipeline.replies.extract import answers, extract
from pipeline.replies.message import Incoming

QUOTE = "> Attached is our plan, version 1.\n> Please reply if it matches.\n"

# "On ... wrote:" headers as the clients write them (Gmail, Apple Mail, Thunderbird, Outlook for iOS/Android).
WROTE = {
    "en-gmail": "On Tue, 3 Mar 2027 at 10:02, Jordan Lee <jordan@seller.example> wrote:",
    "en-apple": "On 3 Mar 2027, at 10:02, Jordan Lee <jordan@seller.example> wrote:",
    "de": "Am Di., 3. März 2027 um 10:02 Uhr schrieb Jordan Lee <jordan@seller.example>:",
    "fr": "Le mar. 3 mars 2027 à 10:02, Jordan Lee <jordan@seller.example> a écrit :",
    "es": "El mar, 3 mar 2027 a las 10:02, Jordan Lee (<jordan@seller.example>) escribió:",
    "ru-gmail": "вт, 3 мар. 2027 г. в 10:02, Jordan Lee <jordan@seller.example>:",
    "ru-thunderbird": "03.03.2027 10:02, Jordan Lee пишет:",
    "ru-apple": "3 марта 2027 г., в 10:02, Jordan Lee <jordan@seller.example> написал(а):",
    "pl-gmail": "wt., 3 mar 2027 o 10:02 Jordan Lee <jordan@seller.example> napisał(a):",
    "pl-thunderbird": "Dnia 3.03.2027 o 10:02, Jordan Lee pisze:",
    "nl": "Op di 3 mrt 2027 om 10:02 schreef Jordan Lee <jordan@seller.example>:",
    "no-gmail": "tir. 3. mar. 2027 kl. 10:02 skrev Jordan Lee <jordan@seller.example>:",
    "no-apple": "3. mar. 2027 kl. 10:02 skrev Jordan Lee <jordan@seller.example>:",
    "da-gmail": "tir. 3. mar. 2027 kl. 10.02 skrev Jordan Lee <jordan@seller.example>:",
    "sv-gmail": "tis 3 mars 2027 kl 10:02 skrev Jordan Lee <jordan@seller.example>:",
    "it-gmail": "Il giorno mar 3 mar 2027 alle ore 10:02 Jordan Lee <jordan@seller.example> ha scritto:",
    "pt-gmail": "Em ter., 3 de mar. de 2027 às 10:02, Jordan Lee <jordan@seller.example> escreveu:",
    "ja-gmail": "2027年3月3日(火) 10:02 Jordan Lee <jordan@seller.example>:",
    "ja-apple": "2027/03/03 10:02、Jordan Lee <jordan@seller.example>のメール:",
    "pl-apple": "Wiadomość napisana przez Jordan Lee <jordan@seller.example> w dniu 3 mar 2027, o godz. 10:02:",
    "zh-gmail": "Jordan Lee <jordan@seller.example> 于2027年3月3日周二 10:02写道：",
    "zh-tw-gmail": "Jordan Lee <jordan@seller.example> 於 2027年3月3日 週二 上午10:02寫道：",
}

# Outlook's header block of the quoted message, in the languages Outlook writes it.
OUTLOOK = {
    "en": ("From", "Sent", "To", "Subject"),
    "de": ("Von", "Gesendet", "An", "Betreff"),
    "fr": ("De", "Envoyé", "À", "Objet"),
    "es": ("De", "Enviado el", "Para", "Asunto"),
    "ru": ("От", "Отправлено", "Кому", "Тема"),
    "pl": ("Od", "Wysłano", "Do", "Temat"),
    "nl": ("Van", "Verzonden", "Aan", "Onderwerp"),
    "no": ("Fra", "Sendt", "Til", "Emne"),
    "da": ("Fra", "Sendt", "Til", "Emne"),
    "sv": ("Från", "Skickat", "Till", "Ämne"),
    "it": ("Da", "Inviato", "A", "Oggetto"),
    "pt": ("De", "Enviado", "Para", "Assunto"),
    "ja": ("差出人", "送信日時", "宛先", "件名"),
    "zh": ("发件人", "发送时间", "收件人", "主题"),
}


def test_text_straight_above_a_wrote_header_is_kept() -> None:
    body = "Sounds good, confirmed.\nOn Tue, 3 Mar 2027 at 10:02, X <x@y.example> wrote:\n" + QUOTE
    got = extract(body)
    assert got.text == "Sounds good, confirmed."
    assert "quote header" in got.removed


def test_text_straight_above_a_wrapped_wrote_header_is_kept() -> None:
    body = "Sounds good, confirmed.\nOn Tue, 3 Mar 2027 at 10:02, Jordan Lee\n<jordan@seller.example> wrote:\n" + QUOTE
    assert extract(body).text == "Sounds good, confirmed."


def test_a_wrapped_header_alone_is_still_cut_whole() -> None:
    body = "Fine by me.\n\nOn Tue, 3 Mar 2027 at 10:02, Jordan Lee\n<jordan@seller.example> wrote:\n" + QUOTE
    assert extract(body).text == "Fine by me."


@pytest.mark.parametrize("client", sorted(WROTE))
@pytest.mark.parametrize("gap", ["\n\n", "\n"])
def test_wrote_headers_in_many_languages(client: str, gap: str) -> None:
    body = "Please move the pilot to 20 March." + gap + WROTE[client] + "\n\n" + QUOTE
    assert extract(body).text == "Please move the pilot to 20 March."


# Apple Mail and iOS Mail in Japanese and Polish, as they write the header over an HTML quote.
APPLE_HTML = (
    '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
    '<body dir="auto"><div dir="ltr">Please move the pilot to 20 March.</div><div dir="ltr"><br></div>'
    '<div dir="ltr"><br><blockquote type="cite">{header}<br><br></blockquote></div>'
    '<blockquote type="cite"><div dir="ltr">Attached is our plan, version 1.<br>Please reply if it matches.</div>'
    "</blockquote></body></html>"
)
APPLE_HEADERS = [
    "2026/12/01 10:15、山田 太郎 <taro@example.jp>のメール:",
    "Wiadomość napisana przez Jan Kowalski <jan@example.pl> w dniu 1 gru 2026, o godz. 10:15:",
]


@pytest.mark.parametrize("header", APPLE_HEADERS)
@pytest.mark.parametrize("gap", ["\n\n", "\n"])
def test_apple_mail_headers_in_japanese_and_polish_are_cut(header: str, gap: str) -> None:
    got = extract("Please move the pilot to 20 March." + gap + header + "\n" + QUOTE)
    assert got.text == "Please move the pilot to 20 March."
    assert "quote header" in got.removed


@pytest.mark.parametrize("header", APPLE_HEADERS)
def test_apple_mail_html_headers_in_japanese_and_polish_are_cut(header: str) -> None:
    raw = (
        "From: Taro <taro@example.jp>\r\nSubject: Re: plan\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + APPLE_HTML.format(header=escape(header))
    )
    got = extract(Incoming.from_bytes(raw.encode()))
    assert got.text == "Please move the pilot to 20 March."


def test_an_inline_reply_under_a_japanese_apple_header_keeps_its_answers() -> None:
    body = (
        "Answers below.\n\n2026/12/01 10:15、山田 太郎 <taro@example.jp>のメール:\n\n"
        "> M2  Technical demo - Wed 10 Feb 2027\nFeb 17 works better.\n\n> M3  Pilot\nFine.\n"
    )
    got = extract(body)
    assert got.inline
    assert "のメール" not in got.text
    assert [(b.context, b.text) for b in got.blocks][1:] == [
        (("M2  Technical demo - Wed 10 Feb 2027",), "Feb 17 works better."),
        (("M3  Pilot",), "Fine."),
    ]


@pytest.mark.parametrize("language", sorted(OUTLOOK))
def test_outlook_header_blocks_in_many_languages(language: str) -> None:
    sender, sent, to, subject = OUTLOOK[language]
    body = (
        "Please move the pilot to 20 March.\n\n"
        f"{sender}: Jordan Lee <jordan@seller.example>\n{sent}: 3 03 2027 10:02\n"
        f"{to}: Dana <dana@buyer.example>\n{subject}: Mutual Plan (version 1)\n\n"
        "Attached is our plan, version 1.\n"
    )
    got = extract(body)
    assert got.text == "Please move the pilot to 20 March."
    assert "client reply header" in got.removed


@pytest.mark.parametrize(
    "separator",
    [
        "-----Исходное сообщение-----",
        "-----Oryginalna wiadomość-----",
        "-----Opprinnelig melding-----",
        "-----Ursprungligt meddelande-----",
        "-----原始邮件-----",
        "------------------ 原始邮件 ------------------",
    ],
)
def test_original_message_separators(separator: str) -> None:
    body = f"Confirmed.\n\n{separator}\nJordan wrote the plan.\n"
    assert extract(body).text == "Confirmed."


OWN_WORDS = st.text(alphabet="abcdefghij klmnop,.", min_size=1, max_size=60).filter(
    lambda s: any(c.isalpha() for c in s)
)


@settings(max_examples=200, deadline=None)
@given(own=OWN_WORDS, client=st.sampled_from(sorted(WROTE)), gap=st.sampled_from(["\n", "\n\n", "\n \n"]))
def test_text_above_the_quoted_part_never_comes_out_empty(own: str, client: str, gap: str) -> None:
    body = own + gap + WROTE[client] + "\n" + QUOTE
    got = extract(body).text
    assert got.strip(), body
    assert " ".join(own.split()) in " ".join(got.split())


# --- inline answers --------------------------------------------------------------------------------------------


def test_inline_answers_pair_each_answer_with_the_quoted_line_it_answers() -> None:
    body = (
        "On Tue, 3 Mar 2027 at 10:02, Jordan Lee <jordan@seller.example> wrote:\n"
        "> M2  Technical demo - Wed 10 Feb 2027\n"
        "Another week for this one.\n\n"
        "> M3  Pilot on Q4 data - Mon 1 Mar 2027\n"
        "> M4  Reference call - Thu 4 Mar 2027\n"
        "Fine.\n"
    )
    got = answers(extract(body))
    assert [(a.quoted, a.text) for a in got] == [
        ("M2  Technical demo - Wed 10 Feb 2027", "Another week for this one."),
        ("M4  Reference call - Thu 4 Mar 2027", "Fine."),
    ]
    assert got[1].context == ("M3  Pilot on Q4 data - Mon 1 Mar 2027", "M4  Reference call - Thu 4 Mar 2027")


def test_a_reply_on_top_has_no_inline_answers() -> None:
    assert answers(extract("Confirmed.\n\nOn Tue, 3 Mar 2027, X <x@y.example> wrote:\n" + QUOTE)) == ()


# --- thread keys ---------------------------------------------------------------------------------------------


def _reply(headers: str) -> Incoming:
    raw = (
        "From: Dana <dana@buyer.example>\r\nTo: jordan@seller.example\r\nSubject: Re: plan\r\n"
        "Message-ID: <r1@buyer.example>\r\n" + headers + "Content-Type: text/plain\r\n\r\nConfirmed.\r\n"
    )
    return Incoming.from_bytes(raw.encode())


def test_folded_references_are_unfolded() -> None:
    message = _reply(
        "References: <first@seller.example>\r\n\t<plan.p-1.v1@seller.example>\r\n"
        "In-Reply-To:\r\n <plan.p-1.v1@seller.example>\r\n"
    )
    assert message.thread_keys == ("plan.p-1.v1@seller.example", "first@seller.example")
    assert message.replied_versions(["seller.example"]) == (("p-1", 1),)


def test_encoded_word_references_are_decoded() -> None:
    message = _reply(
        "References: =?utf-8?b?PHBsYW4ucC0xLnYxQHNlbGxlci5leGFtcGxlPg==?=\r\n"
        "In-Reply-To: =?us-ascii?q?=3Cplan=2Ep-1=2Ev1=40seller=2Eexample=3E?=\r\n"
    )
    assert message.in_reply_to == ("plan.p-1.v1@seller.example",)
    assert message.references == ("plan.p-1.v1@seller.example",)
    assert message.replied_versions(["seller.example"]) == (("p-1", 1),)


@pytest.mark.parametrize(
    "body",
    [
        # the sender's words and the header on one line (some webmail clients)
        "Fine by me. On Tue, 3 Mar 2027 at 10:02, Jordan Lee <jordan@seller.example> wrote:\n> Attached is our plan.\n",
        "Fine by me.--- On Tue, 3 Mar 2027, Jordan Lee <jordan@seller.example> wrote:\n> Attached is our plan.\n",
        # Android's header between dashes
        "Fine by me.\n\n---- Jordan Lee wrote ----\n\nAttached is our plan.\n",
        # a Russian Android header wrapped inside the address, straight under the sender's line
        'Fine by me.\n03.03.2027 10:02 пользователь "jordan@seller.example" <\njordan@seller.example> написал:\n\n'
        "> Attached is our plan.\n",
        # a header block that opens with Date: rather than From:
        "Fine by me.\nDate: Tue, 3 Mar 2027 10:02:00 +0000\nFrom: jordan@seller.example\nTo: dana@buyer.example\n"
        "Subject: Mutual Plan\n\nAttached is our plan.\n",
        # a wrapped link of the quoted text left unquoted by the client
        "Fine by me.\n\nOn Tue, 3 Mar 2027, Jordan Lee wrote:\n\n> Read the plan (http://seller.example/plan/\n"
        "abc123)\n> Attached is our plan.\n",
    ],
)
def test_headers_in_the_shapes_clients_leave_them(body: str) -> None:
    got = extract(body)
    assert got.own == "Fine by me.", got


def test_the_soup_kept_from_reading_is_used_once_and_changes_nothing() -> None:
    # Reading an HTML reply keeps its parsed HTML for the extraction that follows; a second extraction parses anew.
    raw = (REPLIES / "07-html-outlook-push-back.eml").read_bytes()
    first = extract(Incoming.from_bytes(raw))
    message = Incoming.from_bytes(raw)
    assert message.html
    assert extract(message) == first
    assert extract(message) == first
    assert extract(message.text, html=message.html) == first


def test_long_lines_under_a_header_opening_stay_cheap() -> None:
    # A header is never longer than a few hundred characters: longer joins are not tried (the patterns slow down).
    import time

    body = ("On a b\n" + "c d " * 1250 + "\n") * 40 + "> q\n"
    started = time.process_time()
    extract(body)
    assert time.process_time() - started < 3.0
