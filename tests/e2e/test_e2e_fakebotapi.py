"""The fake server's Telegram-like validation, checked against hand-written expectations."""

from __future__ import annotations

import httpx
import pytest
from fakebotapi import LOCAL_TOKEN, ApiError, FakeBotAPI, html_to_text, parse_html


def test_html_entities_with_utf16_offsets():
    # "😀" is 2 UTF-16 units: the bold entity starts at 3, not 2.
    plain, entities = parse_html("😀 <b>x &amp; y</b> <a href=\"https://e.x/?a=1&amp;b=2\">l</a>")
    assert plain == "😀 x & y l"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 5},
        {"type": "text_link", "offset": 9, "length": 1, "url": "https://e.x/?a=1&b=2"},
    ]


def test_nested_and_pre_code_language():
    plain, entities = parse_html('<b>a<i>b</i></b><pre><code class="language-py">c</code></pre>')
    assert plain == "abc"
    assert {"type": "italic", "offset": 1, "length": 1} in entities
    assert {"type": "pre", "offset": 2, "length": 1, "language": "py"} in entities


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a<br>b", 'Unsupported start tag "br"'),
        ("<b>open", 'end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag "b"'),
        ("close</b>", 'Unmatched end tag "b"'),
        ("5 < 6", "bare '<'"),
        ("R&D", "bare '&'"),
        ("<a>x</a>", 'must have attribute "href"'),
        ("<script>x</script>", 'Unsupported start tag "script"'),
    ],
)
def test_html_telegram_refuses(text, why):
    with pytest.raises(ApiError) as e:
        parse_html(text)
    assert e.value.code == 400
    assert "can't parse entities" in e.value.description and why in e.value.description


def test_html_to_text_keeps_link_targets():
    assert html_to_text('<b>EDR</b> 0.8 % <a href="https://x.y">doc</a>') == (
        "EDR 0.8 % doc (https://x.y)"
    )


def _post(api: FakeBotAPI, method: str, **data):
    return httpx.post(f"{api.base_url}{LOCAL_TOKEN}/{method}", data=data, timeout=5).json()


def test_send_message_limits_and_shapes(fake_api: FakeBotAPI):
    ok = _post(fake_api, "sendMessage", chat_id="7", text="x" * 4096)
    assert ok["ok"] and ok["result"]["chat"] == {"id": 7, "type": "private"}
    # Entities do not count: 4096 visible characters plus tags are accepted.
    assert _post(fake_api, "sendMessage", chat_id="7", text="<b>" + "x" * 4096 + "</b>",
                 parse_mode="HTML")["ok"]
    too_long = _post(fake_api, "sendMessage", chat_id="7", text="x" * 4097)
    assert too_long == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: message is too long",
    }
    empty = _post(fake_api, "sendMessage", chat_id="7", text="<b> </b>", parse_mode="HTML")
    assert empty["description"] == "Bad Request: message text is empty"
    long_data = '{"inline_keyboard": [[{"text": "go", "callback_data": "' + "x" * 65 + '"}]]}'
    bad = _post(fake_api, "sendMessage", chat_id="7", text="hi", reply_markup=long_data)
    assert bad["description"] == "Bad Request: BUTTON_DATA_INVALID"


def test_wrong_token_and_unknown_method(fake_api: FakeBotAPI):
    r = httpx.post(f"{fake_api.base_url}1:nope/getMe", timeout=5)
    assert r.status_code == 401
    assert _post(fake_api, "sendSticker", chat_id="7")["error_code"] == 404


def test_get_updates_offsets_and_long_poll(fake_api: FakeBotAPI):
    assert _post(fake_api, "getUpdates", timeout="0")["result"] == []
    u1 = fake_api.inject_message(9, None, "/start")
    u2 = fake_api.inject_message(9, None, "hello 123")
    got = _post(fake_api, "getUpdates", timeout="0")["result"]
    assert [u["update_id"] for u in got] == [u1["update_id"], u2["update_id"]]
    assert got[0]["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert "entities" not in got[1]["message"]
    # Confirming with offset drops the first; the text stays a string, not a number.
    again = _post(fake_api, "getUpdates", offset=str(u2["update_id"]), timeout="0")["result"]
    assert [u["message"]["text"] for u in again] == ["hello 123"]
    after = _post(fake_api, "getUpdates", offset=str(u2["update_id"] + 1), timeout="0.2")
    assert after["result"] == []


def test_edit_not_modified_and_missing(fake_api: FakeBotAPI):
    sent = _post(fake_api, "sendMessage", chat_id="7", text="a")["result"]
    same = _post(fake_api, "editMessageText", chat_id="7", message_id=str(sent["message_id"]),
                 text="a")
    assert same["description"].startswith("Bad Request: message is not modified")
    edited = _post(fake_api, "editMessageText", chat_id="7", message_id=str(sent["message_id"]),
                   text="b")
    assert edited["ok"] and edited["result"]["text"] == "b"
    assert fake_api.message(7, sent["message_id"])["text"] == "b"
    missing = _post(fake_api, "editMessageText", chat_id="7", message_id="999", text="c")
    assert missing["description"] == "Bad Request: message to edit not found"
    msgs = fake_api.wait_for_messages(7, 2, timeout=1)
    assert [(m["text"], m["edited"]) for m in msgs] == [("a", False), ("b", True)]


def test_send_document_multipart(fake_api: FakeBotAPI):
    r = httpx.post(
        f"{fake_api.base_url}{LOCAL_TOKEN}/sendDocument",
        data={"chat_id": "7", "caption": "your <b>export</b>", "parse_mode": "HTML"},
        files={"document": ("positions.csv", b"id,expiry\n1,2026-12-18\n", "text/csv")},
        timeout=5,
    ).json()
    assert r["ok"]
    doc = r["result"]["document"]
    assert doc["file_name"] == "positions.csv" and doc["file_size"] == 23
    assert r["result"]["caption"] == "your export"
    assert fake_api.file_content(doc["file_id"]) == b"id,expiry\n1,2026-12-18\n"


def test_malformed_parameters_are_a_bad_request_not_a_crash(fake_api: FakeBotAPI):
    bad = _post(fake_api, "editMessageText", chat_id="7", message_id="abc", text="x")
    assert bad["error_code"] == 400 and bad["description"].startswith("Bad Request")
    assert _post(fake_api, "getMe")["ok"]  # still serving
