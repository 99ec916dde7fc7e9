"""The inventory-script protocol: form parsing bounds, item reading, header-safe messages, and the
canonical options key that SKU mappings are stored under."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from include.stocksync.availability import protocol as p
from include.stocksync.availability.skus import options_key


def test_form_pairs_keep_order_and_decode_plus_and_percent() -> None:
    body = b".code=TS%2D1&.quantity=2&Colour=Navy+Blue&note=a%3Db%26c&&empty="
    assert p.parse_form(body) == [(".code", "TS-1"), (".quantity", "2"), ("Colour", "Navy Blue"),
                                  ("note", "a=b&c"), ("empty", "")]


def test_latin1_form_decodes_with_its_charset() -> None:
    codec = p.charset_of("application/x-www-form-urlencoded; charset=ISO-8859-1")
    assert p.parse_form(b"Farbe=Gr%FCn", codec=codec) == [("Farbe", "Grün")]


@pytest.mark.parametrize(("content_type", "status"), [
    ("application/json", 415), ("text/plain", 415), ("multipart/form-data; boundary=x", 415),
    ("application/x-www-form-urlencoded; charset=utf-16", 415),
])
def test_only_url_encoded_forms_are_read(content_type: str, status: int) -> None:
    with pytest.raises(p.RequestError) as err:
        p.charset_of(content_type)
    assert err.value.status == status


def test_missing_content_type_is_taken_as_a_utf8_form() -> None:
    assert p.charset_of(None) == "utf-8"


@pytest.mark.parametrize(("body", "why"), [
    (b"a=1&" * 5 + b"b=2", "too_many_fields"),
    (b"k=" + b"v" * 40, "field_too_long"),
    (b"k=" + b"%41" * 40, "field_too_long"),
    (b"k=%C3", "bad_encoding"),
    (b"k=a%0Ab", "control_character"),
    (b"k=a%7Fb", "control_character"),
    (b"=v", "bad_form"),
])
def test_form_bounds(body: bytes, why: str) -> None:
    with pytest.raises(p.RequestError) as err:
        p.parse_form(body, max_fields=5, max_length=32)
    assert err.value.cause == why


def test_an_item_needs_a_code_and_no_item_field_means_probe() -> None:
    assert p.read_item([]).probe
    assert p.read_item([("shop", "demo"), ("test", "1")]).probe
    with pytest.raises(p.RequestError) as err:
        p.read_item([(".id", "5"), (".quantity", "1")])
    assert err.value.cause == "missing_code"
    item = p.read_item([(".CODE", " TS-1 "), (".Quantity", "3"), (".price", "9.90"), ("Size", "M"), (".weight", "1")])
    assert (item.code, item.quantity, item.options, item.info, item.probe) == \
        ("TS-1", 3, (("Size", "M"),), (".price", ".weight"), False)


def test_an_unreadable_quantity_is_information_not_an_error() -> None:
    assert p.read_item([(".code", "A"), (".quantity", "two")]).quantity is None


def test_repeated_fields_and_options_are_refused() -> None:
    for pairs in ([(".code", "A"), (".Code", "B")], [(".code", "A"), ("Size", "M"), (" size ", "L")]):
        with pytest.raises(p.RequestError):
            p.read_item(pairs)


@pytest.mark.parametrize("text", ["In stock.", "Only 3 left — hurry!", "50% off\r\nX-Evil: 1", "Grün ☃ 100%"])
def test_header_values_are_printable_ascii_and_decode_back(text: str) -> None:
    encoded = p.encode_header(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert "\r" not in encoded and "\n" not in encoded
    assert unquote(encoded) == text


def test_header_values_are_bounded() -> None:
    assert len(p.encode_header("x" * 5000)) == p.MAX_MESSAGE_CHARS


def test_options_key_is_canonical() -> None:
    expected = "colour=navy%20blue&size=m"
    assert options_key([("Size", "M"), ("Colour", "Navy  Blue")]) == expected
    assert options_key({" colour ": "NAVY BLUE", "SIZE": " m", "gift note": ""}) == expected
    assert options_key([]) == ""
    # a value holding the separators cannot pass for two options
    assert options_key([("a", "1&b=2")]) != options_key([("a", "1"), ("b", "2")])
    with pytest.raises(ValueError):
        options_key([("Size", "M"), ("size", "L")])
