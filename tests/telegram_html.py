"""A strict checker of Telegram's HTML parse mode (https://core.telegram.org/bots/api#html-style),
independent of `bot.render`: the tags Telegram accepts, properly nested and closed, only the
four named entities plus numeric ones, and `<`/`>`/`&` never bare. Returns the problems."""

from __future__ import annotations

import re

ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a",
                "blockquote", "tg-spoiler", "span", "tg-emoji"}
ALLOWED_ENTITIES = {"lt", "gt", "amp", "quot"}
TELEGRAM_LIMIT = 4096

_TOKEN = re.compile(r"<[^<>]*>|&[^;\s<>&]*;?|[<>]")
_TAG = re.compile(r"<(/?)([a-z][a-z0-9-]*)((?:\s+[a-z-]+=\"[^\"<>]*\")*)\s*>")


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def html_problems(text: str) -> list[str]:
    problems: list[str] = []
    stack: list[str] = []
    for m in _TOKEN.finditer(text):
        token = m[0]
        if token in ("<", ">"):
            problems.append(f"bare {token!r} at {m.start()}")
        elif token.startswith("&"):
            body = token[1:-1] if token.endswith(";") else None
            if body is None:
                problems.append(f"bare '&' at {m.start()}")
            elif not (body in ALLOWED_ENTITIES or re.fullmatch(r"#\d{1,7}|#x[0-9a-fA-F]{1,6}",
                                                               body)):
                problems.append(f"unknown entity {token!r}")
        else:
            tag = _TAG.fullmatch(token)
            if tag is None or tag[2] not in ALLOWED_TAGS:
                problems.append(f"tag Telegram does not accept: {token[:40]!r}")
                continue
            closing, name = tag[1] == "/", tag[2]
            if closing:
                if not stack or stack[-1] != name:
                    problems.append(f"</{name}> closes {stack[-1] if stack else 'nothing'}")
                else:
                    stack.pop()
            else:
                stack.append(name)
    if stack:
        problems.append(f"unclosed {stack}")
    return problems
