"""Text from outside (the WMS, ops, the shop's data) as any reader sees it: the characters that do
not show or that change how the text around them reads. One definition for every place that text
lands: the pages mark them (ui/pages.py), a chat alert turns them into spaces (ops/alert_text.py)."""

from __future__ import annotations

import re

# Characters a reader cannot see or that change how the text around them reads: C0 and C1
# controls (tab and line breaks included), DEL, soft hyphen, combining grapheme joiner, Arabic
# letter mark, Hangul fillers, Khmer/Mongolian invisible vowels and selectors, zero-width
# space/joiners and LRM/RLM (U+200B-U+200F), line/paragraph separators, bidi embeddings and
# overrides (U+202A-U+202E) and isolates (U+2066-U+2069) with the other format characters of
# U+2060-U+206F, BOM/ZWNBSP, interlinear annotations, musical format controls, tag characters, and
# lone surrogates (a str can hold them; UTF-8 cannot).
INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\ud800-\udfff\U0001d173-\U0001d17a\U000e0000-\U000e007f]")
