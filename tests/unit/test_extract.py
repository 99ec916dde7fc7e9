"""Extraction from the WMS (`include/stocksync/sync/extract.py`) against the real WMS service.

`WmsClient` walks `GET /v1/stock` over a `requests.Session` that carries the bearer token;
`extract_to_staging` streams every page into `stocksync.raw_<run key>` as text. The WMS
service runs as a subprocess (the `wms` fixture); the raw table lives in the real
PostgreSQL test cluster.
"""

from __future__ import annotations

import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from include.stocksync.store.db import connect
from include.stocksync.sync.extract import WmsClient, WmsError, extract_to_staging, raw_table
from tests.conftest import TEST_TOKEN

# The `wms` fixture: the WMS service subprocess (`.url`, `.admin`).
WmsProcess = Any

COLUMNS = "page, sku, on_hand, non_usable, allocated, available, seq, missing_keys, extra_keys"


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def session(token: str = TEST_TOKEN) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


class Sleeps(list[float]):
    """Records the backoff delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(url: str, *, token: str = TEST_TOKEN, page_size: int = 25, attempts: int = 3,
           sleeps: Sleeps | None = None) -> WmsClient:
    return WmsClient(session(token), url, page_size=page_size, timeout=10, attempts=attempts, backoff=0.5,
                     sleep=sleeps if sleeps is not None else (lambda s: None))


@pytest.fixture
def run_id(shop_dsn: str) -> Iterator[str]:
    """A fresh run id; its raw table is dropped afterwards."""
    rid = f"test-extract-{uuid.uuid4().hex[:8]}"
    yield rid
    with connect(shop_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS stocksync.{raw_table(rid)}")


def raw_rows(dsn: str, rid: str) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute(f"SELECT {COLUMNS} FROM stocksync.{raw_table(rid)} ORDER BY sku, page").fetchall()


def table_exists(dsn: str, rid: str) -> bool:
    with connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (f"stocksync.{raw_table(rid)}",)).fetchone()
    return row is not None and row[0] is not None


def extract(dsn: str, wms_client: WmsClient, rid: str) -> Any:
    with connect(dsn) as conn:
        return extract_to_staging(conn, wms_client, rid)


def by_sku(rows: list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    return {row[1]: row for row in rows}


def test_full_walk_lands_every_row_once_as_text(shop_dsn: str, wms: WmsProcess, run_id: str) -> None:
    wms.admin.reset(120, 3)
    # One SKU with hand-set figures: available = 50 - 5 - 12 = 33.
    (known,) = wms.admin.set_items([{"sku": "SKU-0000007", "on_hand": 50, "non_usable": 5, "allocated": 12}])["items"]
    assert known["available"] == 33
    live = {item["sku"]: item for item in wms.admin.items()}

    result = extract(shop_dsn, client(wms.url, page_size=25), run_id)

    assert result.pages == 5
    assert result.rows == 120
    assert result.staging_table == raw_table(run_id)
    assert result.snapshot_id.startswith("snap-")
    assert isinstance(result.orders_counted_until, datetime) and result.orders_counted_until.tzinfo is not None
    assert isinstance(result.snapshot_taken_at, datetime)

    rows = raw_rows(shop_dsn, run_id)
    assert len(rows) == 120
    skus = [row[1] for row in rows]
    assert len(set(skus)) == 120
    assert set(skus) == {f"SKU-{i:07d}" for i in range(1, 121)}
    assert Counter(row[0] for row in rows) == {0: 25, 1: 25, 2: 25, 3: 25, 4: 20}
    # Page n holds SKUs 25n+1 .. 25n+25 (items come in SKU order).
    assert by_sku(rows)["SKU-0000001"][0] == 0
    assert by_sku(rows)["SKU-0000026"][0] == 1
    assert by_sku(rows)["SKU-0000120"][0] == 4
    for row in rows:
        item = live[row[1]]
        assert row[2:7] == tuple(str(item[f]) for f in ("on_hand", "non_usable", "allocated", "available", "seq"))
        assert row[7] is None and row[8] is None
    assert by_sku(rows)["SKU-0000007"][2:6] == ("50", "5", "12", "33")
    assert by_sku(rows)["SKU-0000007"][6] == str(known["seq"])


def test_re_extract_rebuilds_the_table(shop_dsn: str, wms: WmsProcess, run_id: str) -> None:
    wms.admin.reset(60, 3)
    first = extract(shop_dsn, client(wms.url, page_size=25), run_id)
    assert first.rows == 60 and first.pages == 3
    wms.admin.reset(40, 3)
    second = extract(shop_dsn, client(wms.url, page_size=25), run_id)
    assert second.rows == 40 and second.pages == 2
    assert second.snapshot_id != first.snapshot_id
    rows = raw_rows(shop_dsn, run_id)
    assert len(rows) == 40  # not 100: the walks never mix
    assert {row[1] for row in rows} == {f"SKU-{i:07d}" for i in range(1, 41)}


def test_transient_failures_are_retried(shop_dsn: str, wms: WmsProcess, run_id: str) -> None:
    wms.admin.reset(120, 3)
    wms.admin.faults(fail_status=503, fail_count=2)
    sleeps = Sleeps()
    result = extract(shop_dsn, client(wms.url, attempts=3, sleeps=sleeps), run_id)
    # Two 503s on the first page, backoff 0.5 s doubling: 0.5 then 1.0.
    assert sleeps == [0.5, 1.0]
    assert result.rows == 120 and result.pages == 5
    assert len({row[1] for row in raw_rows(shop_dsn, run_id)}) == 120


def test_permanent_failure_raises_after_all_attempts(shop_dsn: str, wms: WmsProcess, run_id: str) -> None:
    wms.admin.reset(120, 3)
    wms.admin.faults(fail_status=500, fail_count=-1)
    sleeps = Sleeps()
    with pytest.raises(WmsError) as info:
        extract(shop_dsn, client(wms.url, attempts=4, sleeps=sleeps), run_id)
    message = str(info.value)
    assert "after 4 attempts" in message
    assert "HTTP 500" in message
    assert sleeps == [0.5, 1.0, 2.0]  # no sleep after the last attempt
    assert not table_exists(shop_dsn, run_id)


def test_unreachable_wms_raises_after_all_attempts() -> None:
    sleeps = Sleeps()
    dead = client(f"http://127.0.0.1:{closed_port()}", attempts=2, sleeps=sleeps)
    with pytest.raises(WmsError, match="unreachable after 2 attempts") as info:
        list(dead.pages())
    assert "ConnectionError" in str(info.value)
    assert sleeps == [0.5]


def test_wrong_token_names_credentials_without_retrying(wms: WmsProcess) -> None:
    wms.admin.reset(30, 3)
    sleeps = Sleeps()
    with pytest.raises(WmsError) as info:
        list(client(wms.url, token="wrong-token", sleeps=sleeps).pages())
    assert "credentials" in str(info.value)
    assert "401" in str(info.value)
    assert sleeps == []


def test_expired_cursor_is_an_error_not_a_short_walk(shop_dsn: str, wms: WmsProcess, run_id: str) -> None:
    wms.admin.reset(120, 3)
    wms.admin.faults(expire_cursors=True)
    sleeps = Sleeps()
    with pytest.raises(WmsError, match="cursor expired"):
        extract(shop_dsn, client(wms.url, page_size=25, sleeps=sleeps), run_id)
    assert sleeps == []  # a 410 is not retried page by page: the walk must restart
    assert not table_exists(shop_dsn, run_id)  # the first page was not committed


def test_expired_cursors_do_not_affect_a_single_page_walk(shop_dsn: str, wms: WmsProcess, run_id: str) -> None:
    wms.admin.reset(120, 3)
    wms.admin.faults(expire_cursors=True)
    result = extract(shop_dsn, client(wms.url, page_size=200), run_id)
    assert result.pages == 1 and result.rows == 120


def test_corrupt_values_arrive_as_text(shop_dsn: str, wms: WmsProcess, run_id: str) -> None:
    wms.admin.reset(30, 3)
    live = {item["sku"]: item for item in wms.admin.items()}
    wms.admin.faults(corrupt=[
        {"sku": "SKU-0000003", "field": "available", "value": "abc"},
        {"sku": "SKU-0000004", "field": "available", "value": "__NaN__"},
        {"sku": "SKU-0000005", "field": "available", "value": 1.5},
        {"sku": "SKU-0000006", "field": "on_hand", "value": "__-Infinity__"},
        {"sku": "SKU-0000007", "field": "seq", "value": True},
        {"sku": "SKU-0000008", "field": "allocated", "value": None},
        {"sku": "SKU-0000009", "field": "available", "value": -4},
    ])
    result = extract(shop_dsn, client(wms.url, page_size=25), run_id)
    assert result.rows == 30
    rows = by_sku(raw_rows(shop_dsn, run_id))
    assert len(rows) == 30
    assert rows["SKU-0000003"][5] == "\"abc\""  # a JSON string stays quoted: not an integer
    assert rows["SKU-0000004"][5] == "nan"
    assert rows["SKU-0000005"][5] == "1.5"
    assert rows["SKU-0000006"][2] == "-inf"
    assert rows["SKU-0000007"][6] == "true"
    assert rows["SKU-0000008"][4] is None
    assert rows["SKU-0000009"][5] == "-4"
    # The other fields of a corrupted item are kept as received.
    assert rows["SKU-0000003"][2] == str(live["SKU-0000003"]["on_hand"])
    assert rows["SKU-0000003"][6] == str(live["SKU-0000003"]["seq"])
    # Present-but-bad values are not reported as missing or extra keys.
    for sku in ("SKU-0000003", "SKU-0000004", "SKU-0000005", "SKU-0000008"):
        assert rows[sku][7] is None and rows[sku][8] is None
    # Untouched items are unchanged.
    assert rows["SKU-0000001"][5] == str(live["SKU-0000001"]["available"])


def test_missing_and_extra_fields_are_recorded(shop_dsn: str, wms: WmsProcess, run_id: str) -> None:
    wms.admin.reset(30, 3)
    wms.admin.faults(drop_fields=["non_usable"], extra_fields={"bin": "A-1"},
                     corrupt=[{"sku": "SKU-0000002", "field": "seq", "value": "__drop__"},
                              {"sku": "SKU-0000003", "field": "colour", "value": "red"}])
    extract(shop_dsn, client(wms.url, page_size=25), run_id)
    rows = by_sku(raw_rows(shop_dsn, run_id))
    assert len(rows) == 30
    for sku, row in rows.items():
        assert row[3] is None, sku  # non_usable dropped everywhere
        assert row[2] is not None and row[5] is not None
    assert rows["SKU-0000001"][7:] == ("non_usable", "bin")
    assert rows["SKU-0000002"][6] is None
    assert rows["SKU-0000002"][7:] == ("non_usable,seq", "bin")
    assert rows["SKU-0000003"][7:] == ("non_usable", "bin,colour")


def test_only_extra_field_is_recorded(shop_dsn: str, wms: WmsProcess, run_id: str) -> None:
    wms.admin.reset(10, 3)
    live = {item["sku"]: item for item in wms.admin.items()}
    wms.admin.faults(extra_fields={"warehouse": 2})
    extract(shop_dsn, client(wms.url, page_size=25), run_id)
    rows = by_sku(raw_rows(shop_dsn, run_id))
    assert len(rows) == 10
    for sku, row in rows.items():
        assert row[7] is None
        assert row[8] == "warehouse"
        assert row[5] == str(live[sku]["available"])


# --- a well-formed page goes to COPY as text rendered in one piece ---------------------
def _copy_field(value: Any) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _rows_as_copy_text(rows: Any) -> bytes:
    return "".join("\t".join(_copy_field(v) for v in row) + "\n" for row in rows).encode()


@pytest.mark.parametrize("items", [
    [{"sku": f"SKU-{n:07d}", "on_hand": n, "non_usable": 0, "allocated": 1, "available": n - 1, "seq": 10 ** 20 + n}
     for n in range(1, 300)],
    [{"seq": 5, "sku": "A.b/c-d e", "available": -3, "allocated": 0, "non_usable": 2, "on_hand": -1}],
    [],
])
def test_copy_text_of_a_sound_page_is_what_its_rows_send(items: list[Any]) -> None:
    from include.stocksync.wms.sources.base import copy_text, item_rows

    assert copy_text(7, items) == _rows_as_copy_text(item_rows(7, items))


def test_copy_text_of_an_item_is_written_out_by_hand() -> None:
    """PostgreSQL's COPY text format (tab between columns, NULL as \\N, one line a row) in the raw
    table's column order: page, sku, on_hand, non_usable, allocated, available, seq, missing_keys,
    extra_keys; the item's keys in another order, nothing missing or extra."""
    from include.stocksync.wms.sources.base import copy_text

    item = {"seq": 5, "sku": "A.b/c-d e", "available": -3, "allocated": 0, "non_usable": 2, "on_hand": -1}
    assert copy_text(7, [item]) == b"7\tA.b/c-d e\t-1\t2\t0\t-3\t5\t\\N\t\\N\n"


@pytest.mark.parametrize("odd", [
    {"sku": "SKU-1", "on_hand": 1, "non_usable": 0, "allocated": 0, "available": 1},  # a key missing
    {"sku": "SKU-1", "on_hand": 1, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2, "x": 1},
    {"sku": "SKU-1", "on_hand": 1, "non_usable": 0, "allocated": 0, "available": 1, "sq": 2},  # another key
    {"sku": 5, "on_hand": 1, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2},
    {"sku": "SKU-1", "on_hand": True, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2},
    {"sku": "SKU-1", "on_hand": 1.0, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2},
    {"sku": "SKU-1", "on_hand": "1", "non_usable": 0, "allocated": 0, "available": 1, "seq": 2},
    {"sku": "SKU-1", "on_hand": None, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2},
    {"sku": "tab\there", "on_hand": 1, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2},
    {"sku": "back\\slash", "on_hand": 1, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2},
    {"sku": "nul\x00", "on_hand": 1, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2},
    {"sku": "ünï", "on_hand": 1, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2},
    {"sku": "x" * 1025, "on_hand": 1, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2},
    ["sku", "on_hand", "non_usable", "allocated", "available", "seq"],
    "SKU-01", 5, None,
])
def test_a_page_with_an_odd_item_goes_row_by_row(odd: Any) -> None:
    from include.stocksync.wms.sources.base import copy_text

    sound = {"sku": "SKU-2", "on_hand": 1, "non_usable": 0, "allocated": 0, "available": 1, "seq": 2}
    assert copy_text(0, [sound, odd, sound]) is None


def _sound(n: int, **changes: Any) -> dict[str, Any]:
    return {"sku": f"SKU-{n:07d}", "on_hand": n, "non_usable": 0, "allocated": 1, "available": n - 1, "seq": n,
            **changes}


TYPED_PAGES = {
    "sound": [_sound(n) for n in range(1, 50)],
    "empty": [],
    "keys in another order": [dict(reversed(list(_sound(n).items()))) for n in range(1, 4)],
    "seq past 64 bits": [_sound(1, seq=10 ** 20)],
    "negative and zero": [_sound(2, on_hand=-5, available=0)],
    "bool": [_sound(1), _sound(2, on_hand=True)],
    "float": [_sound(1, available=1.0)],
    "numeric text": [_sound(1, seq="7")],
    "null": [_sound(1, allocated=None)],
    "key missing": [{k: v for k, v in _sound(1).items() if k != "seq"}],
    "key more": [_sound(1, color="red")],
    "sku not text": [_sound(1, sku=42)],
    "sku with NUL": [_sound(1), _sound(2, sku="SKU\u0000-2")],
    "sku with tab and backslash": [_sound(1, sku="a\tb\\c")],
    "sku not ASCII": [_sound(1, sku="SKÜ-1\u202e")],
    "sku too long": [_sound(1, sku="x" * 5000)],
    "item not an object": [_sound(1), ["SKU-2", 1, 0, 0, 1, 2]],
}


@pytest.mark.parametrize("name", TYPED_PAGES)
def test_typed_page_decoding_stages_what_plain_json_would(name: str) -> None:
    """The strict typed decode of a stock page is a shortcut only: the COPY bytes it stages
    are those of the plain JSON reading through item_rows, for sound and odd pages alike."""
    import json

    from include.stocksync.wms.sources.http import decode_page, page_copy_text

    content = json.dumps({"snapshot_id": "s", "snapshot_taken_at": "2026-11-23T00:00:00Z",
                          "orders_counted_until": "2026-11-23T00:00:00Z", "items": TYPED_PAGES[name],
                          "next_cursor": None}).encode()
    page = decode_page(content, "page 1")
    items, text = page_copy_text(3, page)
    staged = text if text is not None else _rows_as_copy_text(item_rows_of(3, items))
    assert staged == _rows_as_copy_text(item_rows_of(3, json.loads(content)["items"]))
    assert len(items) == len(TYPED_PAGES[name])
    if name == "sound":
        assert page.typed and text is not None  # the shortcut is taken where it can be


def item_rows_of(page: int, items: list[Any]) -> list[Any]:
    from include.stocksync.wms.sources.base import item_rows

    return list(item_rows(page, items))


# ----------------------------------------------------------------------------- walks bounded by what arrives

def catalog_bounds(enabled: int, page_size: int) -> Any:
    """The bounds the nightly gives a walk of an enabled catalog of `enabled` SKUs (shipped margin
    and extra pages), with a deadline no test reaches."""
    from include.stocksync.wms.sources.base import WalkBounds

    return WalkBounds.for_catalog(enabled, page_size, margin=0.10, extra=2, seconds=600)


def extract_bounded(dsn: str, wms_client: WmsClient, rid: str, bounds: Any, limits: Any = None) -> Any:
    with connect(dsn) as conn:
        return extract_to_staging(conn, wms_client, rid, bounds=bounds, limits=limits)


def shipped_page_size() -> int:
    """The page size the config ships with (the test session asks for 25: tests/conftest.py)."""
    from include.stocksync.config.settings import load_settings

    return load_settings(environ={}).page_size


@pytest.mark.parametrize("asked", [25, "shipped"])
def test_a_wms_serving_smaller_pages_than_asked_is_walked_to_its_end(shop_dsn: str, wms: WmsProcess, run_id: str,
                                                                     asked: Any) -> None:
    """Many WMS APIs cap their page size below the `limit` asked for: 7 items a page here. The walk
    is bounded at the page size served, so all 120 SKUs arrive, in ceil(120 / 7) = 18 pages."""
    page_size = shipped_page_size() if asked == "shipped" else asked
    assert page_size > 7
    wms.admin.reset(120, 3)
    wms.admin.faults(page_size_cap=7)

    result = extract_bounded(shop_dsn, client(wms.url, page_size=page_size), run_id, catalog_bounds(120, page_size))

    assert result.rows == 120 and result.pages == 18
    rows = raw_rows(shop_dsn, run_id)
    assert {row[1] for row in rows} == {f"SKU-{i:07d}" for i in range(1, 121)}
    assert Counter(row[0] for row in rows) == {**{page: 7 for page in range(17)}, 17: 1}


def endless_pages(per_page: int, pad: int = 0) -> Any:
    """A WMS whose every cursor leads to a new page of `per_page` new SKUs (padded with `pad` bytes
    of blanks), forever, in one consistent snapshot."""
    from tests.wms_double import Answer, page_body

    def answer(cursor: str | None) -> Answer:
        n = 0 if cursor is None else int(cursor.removeprefix("e"))
        items = [_sound(n * 1000 + i + 1) for i in range(per_page)]
        return Answer(body=page_body(items, next_cursor=f"e{n + 1}", padding=" " * pad))
    return answer


@pytest.mark.parametrize(("per_page", "pad", "fragments", "requests_made"), [
    # 40 SKUs x 1.1 = 44 rows: ceil(44 / 7) + 2 = 9 pages at the 7 a page it serves
    (7, 0, ["page 10 (cursor 'e9')", "more than the 9", "7 rows a page the WMS serves (asked for 25)"], 9),
    # at one item a page: 44 + 2 = 46 pages
    (1, 0, ["page 47 (cursor 'e46')", "more than the 46", "1 rows a page the WMS serves"], 46),
    # more rows than asked for: (ceil(44 / 25) + 2) pages of 25 = 100 rows at most; 4 x 30 = 120 is past it
    (30, 0, ["120 rows arrived by page 4", "more than the 100"], 4),
    # 100 rows x 4096 bytes = 409,600 bytes at most, whatever the pages carry
    (1, 150_000, ["bytes arrived by page 3", "more than the 409600"], 3),
], ids=["7-a-page", "1-a-page", "more-than-asked", "padded"])
def test_an_endless_walk_still_ends_at_what_arrives(shop_dsn: str, run_id: str, per_page: int, pad: int,
                                                   fragments: list[str], requests_made: int) -> None:
    from tests.wms_double import ScriptedWms

    double = ScriptedWms(TEST_TOKEN)
    double.dynamic = endless_pages(per_page, pad)
    try:
        with pytest.raises(WmsError, match="does not end") as caught:
            extract_bounded(shop_dsn, client(double.url, page_size=25), run_id, catalog_bounds(40, 25))
    finally:
        double.stop()
    for fragment in fragments:
        assert fragment in str(caught.value), (fragment, str(caught.value))
    assert len(double.requests) == requests_made
    assert not table_exists(shop_dsn, run_id)


# ----------------------------------------------------------------------------- pages stamped with their own time

def stamped_walk(times: list[tuple[str, str | None]], snapshot_ids: list[str] | None = None) -> Any:
    """A scripted walk of len(times) pages of 5 SKUs; page n stamped (snapshot_taken_at,
    orders_counted_until) = times[n]."""
    from tests.wms_double import Answer, ScriptedWms, page_body

    double = ScriptedWms(TEST_TOKEN)
    ids = snapshot_ids or ["snap-live"] * len(times)
    for n, (taken, counted) in enumerate(times):
        cursor = None if n == 0 else f"c{n}"
        following = f"c{n + 1}" if n + 1 < len(times) else None
        double.answers[cursor] = Answer(body=page_body([_sound(5 * n + i + 1) for i in range(5)],
                                                       snapshot_id=ids[n], taken_at=taken, counted_until=counted,
                                                       next_cursor=following))
    return double


def test_pages_of_one_snapshot_stamped_apart_are_a_live_walk_at_its_earliest_time(shop_dsn: str,
                                                                                  run_id: str) -> None:
    """Each page carries the time it was read (microseconds apart, and not in order): the walk is
    taken, with the earliest snapshot time and the earliest watermark of its pages."""
    from datetime import timedelta, timezone

    from tests.wms_double import iso

    base = datetime.now(timezone.utc) - timedelta(minutes=10)
    taken = [base + timedelta(microseconds=3), base + timedelta(microseconds=1), base + timedelta(seconds=2)]
    counted = [base, base - timedelta(microseconds=5), base + timedelta(seconds=1)]
    double = stamped_walk([(iso(t), iso(c)) for t, c in zip(taken, counted, strict=True)])
    try:
        result = extract_bounded(shop_dsn, client(double.url, page_size=5), run_id, catalog_bounds(15, 5))
    finally:
        double.stop()
    assert result.rows == 15 and result.pages == 3
    assert result.snapshot_taken_at == base + timedelta(microseconds=1)
    assert result.orders_counted_until == base - timedelta(microseconds=5)

    # pages of another snapshot in the same walk are still refused
    mixed = stamped_walk([(iso(base), iso(base))] * 2, snapshot_ids=["snap-a", "snap-b"])
    try:
        with pytest.raises(WmsError, match="mixes snapshots: page 2 .* snapshot_id 'snap-b'"):
            extract_bounded(shop_dsn, client(mixed.url, page_size=5), run_id, catalog_bounds(10, 5))
    finally:
        mixed.stop()


def test_pages_stamped_apart_are_refused_when_configured_naming_the_setting(shop_dsn: str, run_id: str) -> None:
    from datetime import timedelta, timezone

    from include.stocksync.wms.sources.base import SnapshotLimits
    from tests.wms_double import iso

    base = datetime.now(timezone.utc) - timedelta(minutes=10)
    later = base + timedelta(microseconds=7)
    double = stamped_walk([(iso(base), iso(base)), (iso(later), iso(later))])
    try:
        with pytest.raises(WmsError) as caught:
            extract_bounded(shop_dsn, client(double.url, page_size=5), run_id, catalog_bounds(10, 5),
                            SnapshotLimits(page_times="refuse"))
    finally:
        double.stop()
    message = str(caught.value)
    assert "page 2 (cursor 'c1')" in message and iso(later) in message
    assert "snapshot_page_times: earliest" in message and "STOCKSYNC_SNAPSHOT_PAGE_TIMES" in message


def test_the_wms_simulator_stamping_each_page_is_walked(shop_dsn: str, wms: WmsProcess, run_id: str) -> None:
    """The simulator's live walk (each page stamped when served): the walk keeps the first page's
    time, the earliest."""
    wms.admin.reset(60, 3)
    wms.admin.faults(stamp_pages=True, latency_ms=2)

    result = extract_bounded(shop_dsn, client(wms.url, page_size=25), run_id, catalog_bounds(60, 25))

    assert result.rows == 60 and result.pages == 3
    assert result.orders_counted_until == result.snapshot_taken_at


def test_two_long_values_sharing_their_first_characters_stay_two_values() -> None:
    """Text past RAW_TEXT_MAX_LENGTH is cut with a marker naming the whole text's digest: two SKUs of
    5,000 characters that differ only at the end stay two different SKUs (cut alike, they were one
    SKU twice, and the delta failed as duplicates instead of the two being quarantined)."""
    from include.stocksync.wms.sources.base import RAW_TEXT_MAX_LENGTH, safe_text

    first, second = safe_text("L" * 4999 + "a"), safe_text("L" * 4999 + "b")
    assert first != second
    assert first.startswith("L" * RAW_TEXT_MAX_LENGTH) and len(first) < RAW_TEXT_MAX_LENGTH + 80
    assert safe_text("L" * 4999 + "a") == first  # the same text cuts the same way
