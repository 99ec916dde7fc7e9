"""The inventory-script protocol: the storefront's form-encoded request and our header answer.

Request: `POST`, `application/x-www-form-urlencoded`. Item fields have keys starting with a dot
(`.code`, `.id`, `.quantity`, `.name`, `.price`, ...); each option the shopper picked follows as a
plain `name=value` pair. Unknown dot keys are information (kept, never an error).

A request without any dot key is the platform's *probe* (sent when the merchant enters the script
URL): it is answered in the same format without touching the database.

The parser is our own, small and strict, because the body comes from the internet: it bounds the
number of fields and the length of every key and value, refuses control characters (a NUL byte
would also make PostgreSQL reject the bound parameter), refuses bytes that are not valid in the
declared charset, and refuses a repeated item field or option (which value would we answer for?).

Answer: the numbers travel in headers (see `HEADERS`); the body is a short line for humans
debugging. A header value never contains CR/LF: the shopper message is ASCII with everything
else percent-encoded as UTF-8 (`encode_header`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

HEADER_AVAILABLE = "X-Inventory-Available"  # integer: >0 sellable units, 0 not available, <0 unknown
HEADER_MESSAGE = "X-Inventory-Message"  # what the shopper reads (percent-encoded beyond printable ASCII)
HEADER_STATUS = "X-Inventory-Status"  # available | limited | unavailable | unknown | probe | rejected
HEADER_CAUSE = "X-Inventory-Cause"  # why unknown / rejected / unavailable (machine-readable token)
HEADER_SKU = "X-Inventory-Sku"  # the shop SKU the item resolved to
HEADER_SOURCE = "X-Inventory-Source"  # shop | live | none
HEADER_LIVE = "X-Inventory-Live"  # live mode: written | current | fallback
HEADER_SECRET = "X-Inventory-Secret"  # request header carrying the shared secret
QUERY_SECRET = "secret"  # or the query parameter (for platforms that only take a URL)
HEADERS = (HEADER_AVAILABLE, HEADER_MESSAGE, HEADER_STATUS, HEADER_CAUSE, HEADER_SKU, HEADER_SOURCE, HEADER_LIVE)

UNKNOWN = -1
FORM_TYPE = "application/x-www-form-urlencoded"
CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "us-ascii": "ascii", "ascii": "ascii",
            "iso-8859-1": "latin-1", "latin-1": "latin-1", "latin1": "latin-1", "windows-1252": "cp1252"}
MAX_MESSAGE_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_UNSAFE = re.compile(r"[^\x20-\x24\x26-\x7e]")  # printable ASCII except '%'
_INT = re.compile(r"[+-]?\d{1,9}")


class RequestError(Exception):
    """A request we answer with a 4xx status: `cause` is the token in X-Inventory-Cause."""

    def __init__(self, status: int, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.cause = cause
        self.detail = detail


@dataclass(frozen=True)
class Item:
    """One storefront item. `options` keeps the shopper's (name, value) pairs in request order;
    `info` the dot keys we do not use (logged, never an error)."""

    code: str | None
    item_id: str | None = None
    quantity: int | None = None
    name: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    info: tuple[str, ...] = field(default_factory=tuple)

    @property
    def probe(self) -> bool:
        return self.code is None  # read_item refuses an item field without .code


def charset_of(content_type: str | None) -> str:
    """The Python codec for a request's Content-Type; a missing type is taken as a form in UTF-8
    (some platforms send none). Raises 415 for anything that is not a url-encoded form."""
    if content_type is None or not content_type.strip():
        return "utf-8"
    media, _, params = content_type.partition(";")
    if media.strip().lower() != FORM_TYPE:
        raise RequestError(415, "not_form_encoded",
                           f"expected Content-Type {FORM_TYPE}, got {media.strip()[:60]!r}")
    charset = "utf-8"
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if charset not in CHARSETS:
        raise RequestError(415, "unsupported_charset", f"unsupported charset {charset[:40]!r}")
    return CHARSETS[charset]


def parse_form(body: bytes, *, codec: str = "utf-8", max_fields: int = 64,
               max_length: int = 256) -> list[tuple[str, str]]:
    """`key=value&key=value` into (key, value) pairs, strictly (see the module docstring).
    Empty segments (`a=1&&b=2`) are skipped; a segment without `=` is a key with an empty value."""
    pairs: list[tuple[str, str]] = []
    if not body.strip():
        return pairs
    for segment in body.split(b"&"):
        if not segment:
            continue
        if len(pairs) >= max_fields:
            raise RequestError(400, "too_many_fields", f"more than {max_fields} fields")
        raw_key, _, raw_value = segment.partition(b"=")
        key, value = _decode(raw_key, codec, max_length), _decode(raw_value, codec, max_length)
        if not key:
            raise RequestError(400, "bad_form", "a field without a name")
        pairs.append((key, value))
    return pairs


def _decode(raw: bytes, codec: str, max_length: int) -> str:
    if len(raw) > 3 * max_length:  # cheap bound before decoding (each character is at most %XX)
        raise RequestError(400, "field_too_long", f"a key or value longer than {max_length} characters")
    try:
        text = unquote_to_bytes(raw.replace(b"+", b" ")).decode(codec)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(400, "bad_encoding", f"bytes that are not valid {codec}") from exc
    if len(text) > max_length:
        raise RequestError(400, "field_too_long", f"a key or value longer than {max_length} characters")
    if _CONTROL.search(text):
        raise RequestError(400, "control_character", "control characters in a key or value")
    return text


def read_item(pairs: list[tuple[str, str]]) -> Item:
    """The item and options of a parsed form. No dot key at all: the probe. A dot key but no
    `.code`: 400 (we cannot tell which product is meant; `.id` is the platform's own id)."""
    dotted: dict[str, str] = {}
    options: list[tuple[str, str]] = []
    seen_options: set[str] = set()
    for key, value in pairs:
        if key.startswith("."):
            name = key.lower()
            if name in dotted:
                raise RequestError(400, "repeated_field", f"item field {key[:40]!r} given twice")
            dotted[name] = value
        else:
            folded = " ".join(key.split()).casefold()
            if folded in seen_options:
                raise RequestError(400, "repeated_option", f"option {key[:40]!r} given twice")
            seen_options.add(folded)
            options.append((key, value))
    if not dotted:
        return Item(code=None, options=tuple(options))
    code = dotted.pop(".code", "").strip()
    item_id = dotted.pop(".id", None)
    name = dotted.pop(".name", None)
    quantity_text = dotted.pop(".quantity", None)
    if not code:
        raise RequestError(400, "missing_code", "the item has no .code (the product code of the shop)")
    quantity = None
    if quantity_text is not None and _INT.fullmatch(quantity_text.strip()):
        quantity = int(quantity_text.strip())
    return Item(code=code, item_id=item_id, quantity=quantity, name=name, options=tuple(options),
                info=tuple(sorted(dotted)))


def encode_header(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A header-safe form of `text`: printable ASCII stays, everything else (including '%', CR,
    LF and any non-ASCII character) is percent-encoded as UTF-8, so a percent-decoder gives the
    text back exactly and nothing can split the header. Cut at `limit` characters first."""
    text = text[:limit]
    return _HEADER_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), text)


def shopper_message(template: str, available: int, requested: int | None) -> str:
    return template.format(available=available, requested=requested if requested is not None else "")
