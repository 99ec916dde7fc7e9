"""The inventory-script protocol: the storefront's form-encoded request and our header answer.

The hosted store platform's protocol, exactly:

- request: `POST`, `application/x-www-form-urlencoded`, item fields `.catalog`, `.code`, `.id`,
  `.quantity`, `.price` (each key starts with a dot), followed by the options the shopper picked as
  plain `Name=Value` pairs (`Color=Sea Green`, `Size=L`). Other dot keys are information (kept,
  never an error);
- answer: the response headers `Available: <integer>` (the number available, 0 = not available,
  negative = unknown) and `Inventory-Message: <text>` (what the shopper reads when the item is not
  available);
- validation, when the merchant saves the script URL:
  `.catalog=<catalog>&.id=_fake_yahoo_item_&.code=_fake_yahoo_code_`, answered with
  `Available: <any integer>` without touching the database (`Item.probe`).

The parser is our own, small and strict, because the body comes from the internet: it bounds the
number of fields and the length of every key and value, refuses control characters (a NUL byte
would also make PostgreSQL reject the bound parameter), refuses bytes that are not valid in the
declared charset, refuses a repeated item field or option (which value would we answer for?), a
request without `.code` and a `.quantity` that is not a whole number.

The platform's two headers go out with their names spelled exactly as specified (`ExactCase`),
and our own `X-Inventory-*` headers with them (the cause, the SKU...; `X-Inventory-Available` and
`X-Inventory-Message` repeat the platform's two for callers written against earlier versions).
A header value never contains CR/LF: `Inventory-Message` is printable ASCII (`shopper_header`:
other characters transliterated, cut at `MAX_MESSAGE_CHARS`), `X-Inventory-Message` the exact text
percent-encoded as UTF-8 (`encode_header`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

HEADER_AVAILABLE = "Available"  # the platform's: integer, >0 sellable units, 0 not available, <0 unknown
HEADER_MESSAGE = "Inventory-Message"  # the platform's: what the shopper reads (printable ASCII)
HEADER_X_AVAILABLE = "X-Inventory-Available"  # the same number, for callers of earlier versions
HEADER_X_MESSAGE = "X-Inventory-Message"  # the exact message, percent-encoded as UTF-8 beyond printable ASCII
HEADER_STATUS = "X-Inventory-Status"  # available | limited | unavailable | unknown | probe | rejected
HEADER_CAUSE = "X-Inventory-Cause"  # why unknown / rejected / unavailable (machine-readable token)
HEADER_SKU = "X-Inventory-Sku"  # the shop SKU the item resolved to
HEADER_SOURCE = "X-Inventory-Source"  # shop | live | none
HEADER_LIVE = "X-Inventory-Live"  # live mode: written | current | fallback
HEADER_SECRET = "X-Inventory-Secret"  # request header carrying the shared secret
QUERY_SECRET = "secret"  # or the query parameter (for platforms that only take a URL)
HEADERS = (HEADER_AVAILABLE, HEADER_MESSAGE, HEADER_X_AVAILABLE, HEADER_X_MESSAGE, HEADER_STATUS, HEADER_CAUSE,
           HEADER_SKU, HEADER_SOURCE, HEADER_LIVE)

# The platform's validation request (sent when the merchant saves the script URL).
PROBE_ID = "_fake_yahoo_item_"
PROBE_CODE = "_fake_yahoo_code_"

UNKNOWN = -1
MAX_QUANTITY = 1_000_000_000
FORM_TYPE = "application/x-www-form-urlencoded"
CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "us-ascii": "ascii", "ascii": "ascii",
            "iso-8859-1": "latin-1", "latin-1": "latin-1", "latin1": "latin-1", "windows-1252": "cp1252"}
MAX_MESSAGE_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 (NEL, CSI...): no text of a form holds them
_HEADER_UNSAFE = re.compile(r"[^\x20-\x24\x26-\x7e]")  # printable ASCII except '%'
_QUANTITY = re.compile(r"[0-9]{1,10}")  # ASCII digits only (\d would take "٣" for 3)
# Typographic characters that have a plain ASCII spelling a shopper reads the same way.
_ASCII_SPELLING = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"',
                                 "\u201e": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...",
                                 "\u20ac": "EUR", "\u00a3": "GBP", "\u00df": "ss", "\u00e6": "ae", "\u00c6": "AE",
                                 "\u00f8": "o", "\u00d8": "O", "\u0153": "oe", "\u0152": "OE"})


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

    code: str
    item_id: str | None = None
    quantity: int | None = None
    catalog: str | None = None
    price: str | None = None
    name: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    info: tuple[str, ...] = field(default_factory=tuple)

    @property
    def probe(self) -> bool:
        """The platform's validation request: answered without the database."""
        return self.code == PROBE_CODE and self.item_id == PROBE_ID


class ExactCase(bytes):
    """A header name that reaches the wire spelled as given. uvicorn's HTTP/1.1 writer lowercases
    every name (`name.lower()`): legal HTTP, names are case-insensitive, but the platform documents
    `Available` and `Inventory-Message`, and a client that matches names case-sensitively would
    miss `available`. Only our own names use this; if uvicorn stops calling `lower()` nothing
    changes, and if it lowercases some other way the names are still valid HTTP."""

    def lower(self) -> bytes:  # type: ignore[override]
        return self


def exact_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """ASGI headers whose names reach the wire as spelled here (values must be printable ASCII)."""
    return [(ExactCase(name.encode("ascii")), value.encode("ascii")) for name, value in headers.items()]


def platform_headers(available: int, message: str) -> dict[str, str]:
    """The two headers the platform reads, values safe: `Available` and `Inventory-Message`."""
    return {HEADER_AVAILABLE: str(int(available)), HEADER_MESSAGE: shopper_header(message)}


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
    """The item and options of a parsed form. Without `.code` we cannot tell which product is
    meant (`.id` is the platform's own id): 400, as for a `.quantity` that is not a whole number
    from 0 to `MAX_QUANTITY`. `.price` is information (its format is the platform's)."""
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
    code = dotted.pop(".code", "").strip()
    if not code:
        raise RequestError(400, "missing_code", "the request has no .code (the product code of the shop); the "
                                                "platform sends .catalog, .code, .id, .quantity, .price")
    quantity_text = dotted.pop(".quantity", None)
    quantity = None
    if quantity_text is not None and quantity_text.strip():
        if not _QUANTITY.fullmatch(quantity_text.strip()) or int(quantity_text) > MAX_QUANTITY:
            raise RequestError(400, "bad_quantity", f".quantity must be a whole number from 0 to {MAX_QUANTITY}, "
                                                    f"got {quantity_text[:20]!r}")
        quantity = int(quantity_text)
    return Item(code=code, item_id=dotted.pop(".id", None), quantity=quantity, catalog=dotted.pop(".catalog", None),
                price=dotted.pop(".price", None), name=dotted.pop(".name", None), options=tuple(options),
                info=tuple(sorted(dotted)))


def encode_header(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A header-safe form of `text`: printable ASCII stays, everything else (including '%', CR,
    LF and any non-ASCII character) is percent-encoded as UTF-8, so a percent-decoder gives the
    text back exactly and nothing can split the header. Cut at `limit` characters first."""
    text = text[:limit]
    return _HEADER_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), text)


def shopper_header(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` as the value of `Inventory-Message`, which the platform shows as it is: printable
    ASCII only, so nothing can split the header and no byte depends on a charset the platform may
    not assume. Typographic punctuation gets its ASCII spelling, accents are dropped (`Grün` ->
    `Grun`), any run of whitespace (CR, LF and TAB included) is one space, other control and
    format characters are dropped, anything else becomes `?`. At most `limit` characters."""
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", text.translate(_ASCII_SPELLING)):
        if " " <= char <= "~":
            out.append(char)
        elif char.isspace():
            out.append(" ")
        elif not (unicodedata.combining(char) or unicodedata.category(char) in ("Cc", "Cf")):
            out.append("?")
    return " ".join("".join(out).split())[:limit]


def shopper_message(template: str, available: int, requested: int | None) -> str:
    return template.format(available=available, requested=requested if requested is not None else "")
