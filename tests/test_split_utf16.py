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
