"""Issue 13: Telegram counts a message's length in UTF-16 code units (limit 4,096), so a reply
full of emoji labels must be cut by that count, and never inside a tag or an entity."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render import split_message

sys.path.insert(0, str(Path(__file__).parent))
from telegram_html import TELEGRAM_LIMIT, html_problems, utf16_units


def positions_like(n: int) -> str:
    """60 positions labelled with emoji (🚀 is two UTF-16 units, one Python character)."""
    rows = [f"<b>#{i}</b> SPXW 2026-08-21 5900/5950/6500/6550 x2 @4.35 "
            f"<i>{'🚀' * 30} &amp; 📈</i>" for i in range(1, n + 1)]
    return "<b>Your positions</b>\n\n" + "\n".join(rows)


def test_sixty_emoji_labels_fit_telegrams_utf16_limit():
    html = positions_like(60)
    assert len(html) < TELEGRAM_LIMIT * 2 and utf16_units(html) > len(html) + 1000
    parts = split_message(html)
    assert len(parts) >= 2
    for part in parts:
        assert utf16_units(part) <= TELEGRAM_LIMIT, utf16_units(part)
        assert html_problems(part) == []
    assert "".join(parts).count("🚀") == 60 * 30  # nothing lost


def test_one_long_emoji_line_is_cut_by_utf16_units():
    html = "<i>" + "🚀" * 3000 + "</i>"  # 3,007 characters, 6,007 units: one line, no spaces
    parts = split_message(html)
    assert all(utf16_units(p) <= TELEGRAM_LIMIT for p in parts) and len(parts) == 2
    assert all(html_problems(p) == [] for p in parts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["🚀", "a", "&amp;", "<b>b</b>", " ", "\n", "\n\n", "𝔸"]),
                min_size=100, max_size=4000))
def test_every_part_fits_and_is_valid(pieces):
    html = "<i>" + "".join(pieces) + "</i>"
    parts = split_message(html)
    for part in parts:
        assert utf16_units(part) <= TELEGRAM_LIMIT
        assert html_problems(part) == [], part[:80]


# --- the incremental splitter equals the one that recounted every candidate (issue 16) -------


def _reference_split(html: str, limit: int) -> list[str]:
    """split_message before issue 16: length and open tags recounted over the whole candidate
    part for every block (and UTF-16 units counted character by character)."""
    from bot.render import _close_tags, _hard_pieces, _open_stack

    def units(text: str) -> int:
        return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)

    if units(html) <= limit:
        return [html]
    budget = max(limit - 200, limit // 2)
    blocks: list[str] = []
    for block in html.split("\n\n"):
        blocks.extend(_hard_pieces(block, budget) if units(block) > budget else [block])
    parts: list[str] = []
    current = ""
    for block in blocks:
        candidate = f"{current}\n\n{block}" if current else block
        if current and units(candidate) + len(_close_tags(_open_stack(candidate))) > limit:
            open_now = _open_stack(current)
            parts.append(current + _close_tags(open_now))
            current = "".join(tag for _, tag in open_now) + block
        else:
            current = candidate
    if current:
        parts.append(current + _close_tags(_open_stack(current)))
    return [p for p in parts if p.strip()]


_PIECE = st.one_of(
    st.sampled_from(["<b>", "</b>", "<i>", "</i>", "<pre>", "</pre>", '<a href="x">', "</a>",
                     "<code", ">", "<", "&amp;", "\n\n", "\n", " ", "🚀", "\ud800", "é",
                     "<tg-spoiler>", "</tg-spoiler>", "<b\n\nclass='x'>"]),
    st.text(alphabet="ab <>/\n🚀", max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECE, max_size=120), st.integers(60, 400))
def test_split_equals_the_recounting_splitter(pieces, limit):
    html = "".join(pieces)
    from bot.render import utf16_len

    assert utf16_len(html) == len(html) + sum(1 for ch in html if ord(ch) > 0xFFFF)
    assert split_message(html, limit) == _reference_split(html, limit)


def test_split_equals_the_recounting_splitter_on_a_long_reply():
    html = positions_like(200) + "\n\n" + "\n\n".join(f"<b>{i}</b> <i>block {i}" for i in
                                                        range(300)) + "</i>" * 300
    assert split_message(html) == _reference_split(html, TELEGRAM_LIMIT)
