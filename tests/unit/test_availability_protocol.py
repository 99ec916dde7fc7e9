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
    (b"k=Red%C2%85Blue", "control_character"),  # U+0085 NEXT LINE: a C1 control, a line break to some readers
    (b"k=SKU-1%C2%9B31m", "control_character"),  # U+009B CSI: the 8-bit terminal escape
    (b"=v", "bad_form"),
])
def test_form_bounds(body: bytes, why: str) -> None:
    with pytest.raises(p.RequestError) as err:
        p.parse_form(body, max_fields=5, max_length=32)
    assert err.value.cause == why


def test_a_c1_control_byte_of_a_latin1_form_is_refused() -> None:
    with pytest.raises(p.RequestError) as err:
        p.parse_form(b".code=SKU-1&Color=Red\x85Blue", codec="latin-1")
    assert err.value.cause == "control_character"


def test_the_platforms_validation_request_is_the_probe() -> None:
    validation = p.read_item(p.parse_form(b".catalog=yhst-12345678&.id=_fake_yahoo_item_&.code=_fake_yahoo_code_"))
    assert validation.probe and validation.catalog == "yhst-12345678"
    # one of the two fake values alone is an ordinary item (looked up, unknown), not the probe
    assert not p.read_item([(".catalog", "c"), (".id", "_fake_yahoo_item_"), (".code", "TS-1")]).probe
    assert not p.read_item([(".catalog", "c"), (".id", "17"), (".code", "_fake_yahoo_code_")]).probe


def test_the_platforms_item_fields_and_options() -> None:
    pairs = p.parse_form(b".catalog=yhst-12345678&.code=TEE-1&.id=tee-1&.quantity=2&.price=19.90"
                         b"&Color=Sea+Green&Size=L")
    item = p.read_item(pairs)
    assert (item.catalog, item.code, item.item_id, item.quantity, item.price, item.options, item.probe) == \
        ("yhst-12345678", "TEE-1", "tee-1", 2, "19.90", (("Color", "Sea Green"), ("Size", "L")), False)


@pytest.mark.parametrize("pairs", [[], [("Color", "Red")], [(".catalog", "c"), (".id", "5"), (".quantity", "1")],
                                   [(".code", "  ")]])
def test_an_item_needs_a_code(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(p.RequestError) as err:
        p.read_item(pairs)
    assert (err.value.status, err.value.cause) == (400, "missing_code")


@pytest.mark.parametrize("quantity", ["two", "-1", "1.5", "1e3", "99999999999", "+2", "\u0663", "\uff12"])
def test_a_quantity_must_be_a_whole_number(quantity: str) -> None:
    with pytest.raises(p.RequestError) as err:
        p.read_item([(".code", "A"), (".quantity", quantity)])
    assert (err.value.status, err.value.cause) == (400, "bad_quantity")


def test_item_fields_are_read_whatever_their_letter_case() -> None:
    item = p.read_item([(".CODE", " TS-1 "), (".Quantity", "3"), (".price", "9.90"), ("Size", "M"), (".weight", "1")])
    assert (item.code, item.quantity, item.price, item.options, item.info) == \
        ("TS-1", 3, "9.90", (("Size", "M"),), (".weight",))


def test_repeated_fields_and_options_are_refused() -> None:
    for pairs in ([(".code", "A"), (".Code", "B")], [(".code", "A"), ("Size", "M"), (" size ", "L")]):
        with pytest.raises(p.RequestError):
            p.read_item(pairs)


@pytest.mark.parametrize("text", ["In stock.", "Only 3 left — hurry!", "50% off\r\nX-Evil: 1", "Grün ☃ 100%"])
def test_percent_encoded_message_is_printable_ascii_and_decodes_back(text: str) -> None:
    encoded = p.encode_header(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert unquote(encoded) == text


@pytest.mark.parametrize(("text", "header"), [
    ("In stock.", "In stock."),
    ("50% off", "50% off"),  # the platform shows the text as it is: nothing percent-encoded
    ("Only 3 left — hurry!", "Only 3 left - hurry!"),
    ("Sorry\r\nSet-Cookie: a=1", "Sorry Set-Cookie: a=1"),
    ("Grün, Straße, “Größe” …", 'Grun, Strasse, "Grosse" ...'),
    ("tab\there\x00\u200b now", "tab here now"),
    ("Schneemann ☃ 5 €", "Schneemann ? 5 EUR"),
])
def test_shopper_message_header_is_printable_ascii(text: str, header: str) -> None:
    assert p.shopper_header(text) == header


def test_header_values_are_bounded() -> None:
    assert len(p.encode_header("x" * 5000)) == 300
    assert p.shopper_header("é" * 5000) == "e" * 300


def test_platform_headers_keep_their_documented_spelling() -> None:
    assert p.platform_headers(-1, "No\nway") == {"Available": "-1", "Inventory-Message": "No way"}
    assert [(name.lower(), value) for name, value in p.exact_headers({"Available": "7"})] == [(b"Available", b"7")]


def test_options_key_is_canonical() -> None:
    expected = "colour=navy%20blue&size=m"
    assert options_key([("Size", "M"), ("Colour", "Navy  Blue")]) == expected
    assert options_key({" colour ": "NAVY BLUE", "SIZE": " m", "gift note": ""}) == expected
    assert options_key([]) == ""
    # a value holding the separators cannot pass for two options
    assert options_key([("a", "1&b=2")]) != options_key([("a", "1"), ("b", "2")])
    with pytest.raises(ValueError):
        options_key([("Size", "M"), ("size", "L")])
