"""The trust boundary through the real nightly DAG (`dag.test()`), the real shop DB and a WMS that
misbehaves byte for byte (tests/wms_double.py: the same bad page on every retry). What a bad input
does to a run (refused by its step with a permanent error, or quarantined and the night applied)
runs through the pipeline's steps (`nightly_steps`, what the DAG's tasks call); what only Airflow
does (retries of a transient failure, a permanent one failing its task on its first try, the
first cause kept through retries, parameters refused at the first task) runs the whole DAG.

Each class: time stamps and watermark, bounded and well-formed walks, types, text, errors
(transient retried, permanent at once with the first cause kept), parameters. A refused run
leaves stock byte-for-byte unchanged and the freeze released; a permanent failure is not retried.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from devstack.demo_seed import load_catalog, seed_demo
from include.stocksync.domain.errors import is_permanent
from include.stocksync.store.db import connect
from include.stocksync.sync.pipeline import get_run
from tests.conftest import TEST_TOKEN, active_freezes, stock_fingerprint
from tests.integration.loop_helpers import nightly_steps
from tests.integration.test_nightly_sync import alerts_for, expected_stock, run_nightly
from tests.wms_double import Answer, ScriptedWms, hours_ago, iso, page_body

pytestmark = pytest.mark.slow

SKUS = 40
PAGE = 25  # the tests' page size (tests/conftest.py)


@pytest.fixture(scope="module")
def double() -> Iterator[ScriptedWms]:
    server = ScriptedWms(TEST_TOKEN)
    yield server
    server.stop()


@pytest.fixture
def shop(clean_shop: str, stocksync_dsn: str, wms: Any, double: ScriptedWms,
         monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A shop of 40 SKUs drifted from the WMS's items (`dsn`; stocksync's database: `store`); the DAG
    reads the scripted double."""
    wms.admin.reset(SKUS, 31)
    items = wms.admin.items()
    with connect(clean_shop) as conn:
        load_catalog(conn, items, random.Random(31), drift_share=0.2)
        conn.commit()
    double.reset()
    monkeypatch.setenv("AIRFLOW_CONN_WMS_API", double.connection_env())
    return {"dsn": clean_shop, "store": stocksync_dsn, "items": items, "fingerprint": stock_fingerprint(clean_shop)}


def task_tries(dag_run: Any, task_id: str) -> int:
    ti = dag_run.get_task_instance(task_id)
    assert ti is not None
    return int(ti.try_number)


def assert_refused(shop: dict[str, Any], dag_run: Any, task_id: str, *fragments: str) -> dict[str, Any]:
    """Failed at `task_id` on its first try, nothing written, freeze released, error names the fragments."""
    from airflow.utils.state import DagRunState

    assert dag_run.state == DagRunState.FAILED
    assert task_tries(dag_run, task_id) == 1, "a permanent failure must not be retried"
    return assert_run_refused(shop, dag_run.run_id, *fragments)


def refused_by_step(shop: dict[str, Any], double: ScriptedWms, task_id: str, *fragments: str,
                    ) -> tuple[str, dict[str, Any]]:
    """The nightly through the pipeline's steps (no Airflow) stopped at `task_id`'s step with a
    permanent error (the task fails at once, no retry), then as `assert_run_refused`."""
    run_id = f"manual__trust-{uuid.uuid4().hex[:12]}"
    stopped = nightly_steps(shop["dsn"], double, run_id, store=shop["store"])
    assert stopped is not None and stopped[0] == task_id, repr(stopped)
    assert is_permanent(stopped[1]), f"a permanent failure must not be retried: {stopped[1]!r}"
    return run_id, assert_run_refused(shop, run_id, *fragments)


def assert_run_refused(shop: dict[str, Any], run_id: str, *fragments: str) -> dict[str, Any]:
    """Nothing written, freeze released, the run failed with an error naming the fragments, its
    first cause kept and its one attempt recorded as permanent."""
    assert stock_fingerprint(shop["dsn"]) == shop["fingerprint"]
    assert active_freezes(shop["dsn"]) == []
    run = get_run(shop["store"], run_id)
    assert run["status"] == "failed"
    for fragment in fragments:
        assert fragment in run["error"], (fragment, run["error"])
    assert run["first_error"] == run["error"]
    assert [a["kind"] for a in run["attempts"]] == ["permanent"]
    return run


# ------------------------------------------------------------------ time and watermark sanity

def now_plus(seconds: float) -> str:
    return iso(datetime.now(timezone.utc) + timedelta(seconds=seconds))


# headers are built when the test runs (relative to its now), not when the module is imported
TIME_CASES = [
    ("watermark-after-snapshot", lambda: {"taken_at": hours_ago(1), "counted_until": now_plus(-60)},
     ["orders_counted_until", "after snapshot_taken_at", "clock skew of 120 s"]),
    ("watermark-in-the-future", lambda: {"taken_at": now_plus(100), "counted_until": now_plus(215)},
     ["orders_counted_until", "is in the future", "120 s"]),
    ("snapshot-too-old", lambda: {"taken_at": hours_ago(7)},
     ["snapshot_taken_at", "older than the maximum snapshot age of 21600 s"]),
    ("snapshot-from-the-future", lambda: {"taken_at": now_plus(3600)},
     ["snapshot_taken_at", "is in the future", "120 s"]),
    ("snapshot-time-missing", lambda: {"taken_at": ""}, ["snapshot_taken_at", "is missing"]),
    ("snapshot-time-not-a-time", lambda: {"taken_at": "yesterday"}, ["snapshot_taken_at", "'yesterday'"]),
    ("snapshot-time-without-zone", lambda: {"taken_at": "2026-11-23T01:00:00"}, ["snapshot_taken_at", "no timezone"]),
    ("snapshot-id-not-text", lambda: {"snapshot_id": 12345}, ["snapshot_id", "12345"]),
    # times no WMS means: an unset field (the epoch), an offset that puts it before year 1 in UTC
    # (it could not even be stored), a year-9999 "never"
    ("watermark-at-the-epoch", lambda: {"counted_until": "1970-01-01T00:00:00Z"},
     ["orders_counted_until", "not a plausible time", "2000 to 2999"]),
    ("watermark-before-year-1-in-utc", lambda: {"counted_until": "0001-01-01T00:00:00+14:00"},
     ["orders_counted_until", "not a plausible time"]),
    ("snapshot-time-in-year-10000-in-utc", lambda: {"taken_at": "9999-12-31T23:59:59-14:00"},
     ["snapshot_taken_at", "not a plausible time"]),
]


@pytest.mark.parametrize(("header", "fragments"), [c[1:] for c in TIME_CASES], ids=[c[0] for c in TIME_CASES])
def test_insane_snapshot_times_are_refused_before_anything_is_written(
        shop: dict[str, Any], double: ScriptedWms, header: Any, fragments: list[str]) -> None:
    double.serve_walk(shop["items"], PAGE, **header())
    run_id, run = refused_by_step(shop, double, "extract_wms_counts", *fragments)
    # refused on the first page the WMS served, once, and the freeze it held recorded as released
    assert len(double.requests) == 1
    assert run["freeze_seconds"] > 0
    with connect(shop["store"]) as conn:
        assert conn.execute("SELECT count(*) FROM stocksync.sku_audit WHERE run_id = %s",
                            (run_id,)).fetchone() == (0,)


def test_without_a_wms_watermark_never_acknowledged_orders_stay_uncounted(
        dagbag: Any, clean_shop: str, stocksync_dsn: str, wms: Any) -> None:
    """Fallback to the request start: an unacknowledged order placed long before the request
    started is still subtracted (taking it as counted would raise stock: oversell)."""
    from airflow.utils.state import DagRunState

    seeded = seed_demo(clean_shop, wms.admin, skus=SKUS, seed=5, orders=30)
    assert seeded.orders_unsent > 0
    with connect(clean_shop) as conn:  # every unsent order placed well before the request
        conn.execute("UPDATE shop.orders SET created_at = now() - interval '3 hours' "
                     "WHERE wms_acknowledged_at IS NULL")
        unsent_skus = {r[0] for r in conn.execute(
            "SELECT DISTINCT l.sku FROM shop.orders o JOIN shop.order_lines l USING (order_id) "
            "WHERE o.wms_acknowledged_at IS NULL AND o.status IN ('placed', 'paid', 'processing')")}
        conn.commit()
    assert unsent_skus
    wms.admin.faults(no_watermark=True)
    items = wms.admin.items()

    dag_run = run_nightly(dagbag)

    assert dag_run.state == DagRunState.SUCCESS
    run = get_run(stocksync_dsn, dag_run.run_id)
    assert run["orders_counted_until"] is None and run["watermark_source"] == "request_time"
    assert run["watermark"] == run["request_started_at"]
    expected = expected_stock(clean_shop, items, run["request_started_at"])
    after = {sku: qty for sku, qty, _, _ in stock_fingerprint(clean_shop)}
    assert after == {sku: qty for sku, (qty, _) in expected.items()}
    by_sku = {i["sku"]: i for i in items}
    assert any(after[s] < by_sku[s]["available"] for s in unsent_skus)  # subtracted, not taken as counted


# ------------------------------------------------------------------ bounded, well-formed walks

def endless(items: list[dict[str, Any]]) -> Any:
    """Every cursor leads to a new page of new SKUs, forever (one snapshot, consistently)."""
    taken_at = iso(datetime.now(timezone.utc))

    def answer(cursor: str | None) -> Answer:
        n = 0 if cursor is None else int(cursor.removeprefix("e"))
        page = [{**items[0], "sku": f"SKU-E{n:05d}{i:03d}"} for i in range(PAGE)]
        return Answer(body=page_body(page, taken_at=taken_at, next_cursor=f"e{n + 1}"))
    return answer


def test_an_endless_walk_stops_at_its_page_bound(shop: dict[str, Any], double: ScriptedWms) -> None:
    double.dynamic = endless(shop["items"])
    # 40 enabled SKUs, margin 10%, page 25: ceil(44/25) + 2 extra = 4 pages
    refused_by_step(shop, double, "extract_wms_counts", "does not end", "page 5 (cursor 'e4')", "more than the 4")
    assert len(double.requests) == 4


WALK_CASES = [
    ("no-progress", lambda items: {None: Answer(body=page_body([], next_cursor="c1"))},
     ["page 1 (no cursor)", "empty page with a next_cursor", "no progress"]),
    ("mixed-snapshots", lambda items: {
        None: Answer(body=page_body(items[:25], next_cursor="c1")),
        "c1": Answer(body=page_body(items[25:], snapshot_id="snap-2"))},
     ["mixes snapshots", "page 2 (cursor 'c1')", "snap-2"]),
    ("mixed-watermarks", lambda items: {  # a watermark on one page, none on the next
        None: Answer(body=page_body(items[:25], next_cursor="c1")),
        "c1": Answer(body=page_body(items[25:], counted_until=None))},
     ["mixes snapshots", "orders_counted_until"]),
    ("cursor-loop", lambda items: {
        None: Answer(body=page_body(items[:25], next_cursor="c1")),
        "c1": Answer(body=page_body(items[25:], next_cursor="c1"))},
     ["pagination loops", "'c1'"]),
    ("not-json", lambda items: {
        None: Answer(body=page_body(items[:25], next_cursor="c1")),
        "c1": Answer(body=b'{"items": [{"sku": "SKU-1", ')},
     ["page 2 (cursor 'c1')", "not JSON"]),
    ("items-not-a-list", lambda items: {None: Answer(body=page_body({"sku": "x"}))},  # type: ignore[arg-type]
     ["page 1", "no 'items' list"]),
    ("cursor-not-text", lambda items: {None: Answer(body=page_body(items[:25], next_cursor=7))},
     ["next_cursor must be printable text", "7"]),
    ("bad-request", lambda items: {None: Answer(400, b'{"error": "limit too large"}')},
     ["HTTP 400", "page 1", "limit too large"]),
    ("credentials", lambda items: {None: Answer(403, b'{"error": "no"}')}, ["credentials", "403"]),
]


@pytest.mark.parametrize(("script", "fragments"), [c[1:] for c in WALK_CASES], ids=[c[0] for c in WALK_CASES])
def test_a_malformed_walk_fails_at_once_naming_page_and_cursor(
        shop: dict[str, Any], double: ScriptedWms, script: Any, fragments: list[str]) -> None:
    double.answers = script(shop["items"])
    refused_by_step(shop, double, "extract_wms_counts", *fragments)


def test_a_slow_walk_stops_at_its_deadline(shop: dict[str, Any], double: ScriptedWms,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKSYNC_EXTRACT_DEADLINE_SECONDS", "2")
    double.serve_walk(shop["items"], PAGE)
    for cursor in list(double.answers):
        answer = double.answers[cursor]
        assert isinstance(answer, Answer)
        answer.delay = 1.5
    refused_by_step(shop, double, "extract_wms_counts", "deadline of 2 s", "extract_deadline_seconds")


def test_an_oversized_page_is_refused(shop: dict[str, Any], double: ScriptedWms,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKSYNC_MAX_PAGE_BYTES", "2048")
    double.serve_walk(shop["items"], PAGE)
    refused_by_step(shop, double, "extract_wms_counts", "more than the limit of 2048", "max_page_bytes")


# ------------------------------------------------------------------ types and text

def test_a_quantity_sent_as_a_json_string_is_a_type_error(shop: dict[str, Any], double: ScriptedWms) -> None:
    items = [dict(i) for i in shop["items"]]
    items[3]["available"] = str(items[3]["available"])  # "17": digits, but not a JSON integer
    double.serve_walk(items, PAGE)
    _, run = refused_by_step(shop, double, "validate_counts", "quantity_integer[available]")
    with connect(shop["store"]) as conn:
        examples = conn.execute("SELECT examples FROM stocksync.dq_results WHERE run_id = %s "
                                "AND check_name = 'quantity_integer[available]'", (run["run_id"],)).fetchone()
    assert examples[0] == [json.dumps(items[3]["available"])]  # shown quoted: the type is visible


def test_a_page_with_keys_of_our_bookkeeping_is_read_as_the_wms_sent_it(shop: dict[str, Any],
                                                                       double: ScriptedWms) -> None:
    """A page whose top level carries keys a reader might use for its own notes (`_typed`, `_bytes`,
    `_where`) and an item that leaves the typed fast path: the page is judged as sent (the string
    quantity is a type error validation names), never taken for our own typed page."""
    items = [dict(i) for i in shop["items"]]
    items[3]["available"] = str(items[3]["available"])
    double.answers[None] = Answer(body=page_body(items[:PAGE], next_cursor="c1", _typed=True, _bytes=1,
                                                 _where="page 9"))
    double.answers["c1"] = Answer(body=page_body(items[PAGE:]))
    refused_by_step(shop, double, "validate_counts", "quantity_integer[available]")


HOSTILE_SKUS = [
    "SKU-\x00-nul",                                  # PostgreSQL text cannot hold NUL
    "SKU-\ud800-lone-surrogate",                     # not encodable as UTF-8
    "SKU-\u202eevil",                                # bidi override: reorders text on a page
    "<script>alert(1)</script>",                     # markup
    "x'); DROP TABLE shop.stock;--",                 # SQL
    "S" * 5000,                                      # huge
]


@pytest.mark.parametrize("hostile", HOSTILE_SKUS, ids=["nul", "surrogate", "bidi", "script", "sql", "huge"])
def test_one_hostile_sku_among_many_is_quarantined_and_the_night_goes_on(
        clean_shop: str, stocksync_dsn: str, wms: Any, double: ScriptedWms, monkeypatch: pytest.MonkeyPatch,
        hostile: str) -> None:
    wms.admin.reset(200, 32)
    items = wms.admin.items()
    with connect(clean_shop) as conn:
        load_catalog(conn, items, random.Random(32), drift_share=0.1)
        conn.commit()
    double.reset()
    monkeypatch.setenv("AIRFLOW_CONN_WMS_API", double.connection_env())
    fed = [dict(i) for i in items]
    fed[7]["sku"] = hostile
    double.serve_walk(fed, 100)

    run_id = f"manual__hostile-{uuid.uuid4().hex[:12]}"
    assert nightly_steps(clean_shop, double, run_id, {"page_size": 100}, store=stocksync_dsn) is None

    run = get_run(stocksync_dsn, run_id)
    assert run["status"] == "applied" and run["quarantined"] == 1 and run["valid"] == 199
    with connect(stocksync_dsn) as conn:
        sku, reasons = conn.execute("SELECT sku, reasons FROM stocksync.quarantine WHERE run_id = %s",
                                    (run_id,)).fetchone()
    with connect(clean_shop) as conn:
        assert conn.execute("SELECT count(*) FROM shop.stock").fetchone() == (200,)
    assert "\x00" not in sku and sku.encode("utf-8")  # stored safely
    assert set(reasons) & {"sku_format[sku]", "sku_length[sku]"}
    report = Path(run["report_path"]).read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in report  # escaped wherever it shows


def test_malformed_skus_above_the_share_limit_fail_the_run(shop: dict[str, Any], double: ScriptedWms) -> None:
    fed = [dict(i) for i in shop["items"]]
    for n in (1, 2, 3):
        fed[n]["sku"] = f"bad sku {n}"
    double.serve_walk(fed, PAGE)
    refused_by_step(shop, double, "validate_counts", "sku_format[sku]")


# ------------------------------------------------------------------ errors: transient vs permanent

def test_a_transient_failure_is_retried_honouring_retry_after(dagbag: Any, shop: dict[str, Any],
                                                              double: ScriptedWms) -> None:
    from airflow.utils.state import DagRunState

    double.serve_walk(shop["items"], PAGE)
    first_page = double.answers[None]
    calls = {"n": 0}

    def busy_then_ok() -> Answer:
        calls["n"] += 1
        return Answer(429, b'{"error": "slow down"}', {"Retry-After": "1"}) if calls["n"] == 1 else first_page
    double.answers[None] = busy_then_ok

    dag_run = run_nightly(dagbag)

    assert dag_run.state == DagRunState.SUCCESS
    (t1, _), (t2, _) = double.requests[:2]
    assert t2 - t1 >= 0.95  # waited as the WMS asked, not the 0.05 s backoff of the tests
    assert task_tries(dag_run, "extract_wms_counts") == 1


def test_the_first_cause_is_kept_through_retries(dagbag: Any, shop: dict[str, Any], double: ScriptedWms,
                                                 webhook: Any) -> None:
    """Attempt 1: the WMS is down (transient, retried by Airflow). Attempt 2: it answers a page
    that breaks the contract (permanent: no third try). The run keeps both, first cause first."""
    from airflow.utils.state import DagRunState

    calls = {"n": 0}

    def down_then_broken() -> Answer:
        calls["n"] += 1
        if calls["n"] <= 3:  # the tests' http_attempts: the first task try gives up
            return Answer(503, b'{"error": "maintenance"}')
        return Answer(body=b"[1, 2, 3]")
    double.answers[None] = down_then_broken

    dag_run = run_nightly(dagbag)

    assert dag_run.state == DagRunState.FAILED
    assert task_tries(dag_run, "extract_wms_counts") == 2  # permanent on the 2nd try: not retried again
    run = get_run(shop["store"], dag_run.run_id)
    assert "HTTP 503" in run["first_error"] and "unreachable after 3 attempts" in run["first_error"]
    assert "JSON list, not an object" in run["error"]
    assert [a["kind"] for a in run["attempts"]] == ["transient", "permanent"]
    assert len(run["attempts"][0]["retries"]) == 3
    assert stock_fingerprint(shop["dsn"]) == shop["fingerprint"]
    assert active_freezes(shop["dsn"]) == []
    alert = [a for a in alerts_for(webhook, dag_run.run_id) if a["task_id"] == "extract_wms_counts"][-1]
    assert "HTTP 503" in alert["first_cause"]


def test_a_permanent_failure_releases_the_freeze_at_once(dagbag: Any, shop: dict[str, Any],
                                                         double: ScriptedWms) -> None:
    """The freeze window of a permanent failure: no retry delays, the teardown runs next."""
    double.answers[None] = Answer(404, b'{"error": "no such endpoint"}')
    dag_run = run_nightly(dagbag)
    run = assert_refused(shop, dag_run, "extract_wms_counts", "HTTP 404")
    # nothing stood between the failure and the release: the WMS was asked once (no backoff, no
    # retried request), the task ran once (no task retry delay), and the teardown recorded the window
    assert len(double.requests) == 1
    assert run["attempts"][0]["retries"] == []
    assert run["freeze_seconds"] > 0
    print(f"\nfreeze window of a permanent extract failure: {run['freeze_seconds']:.3f} s")


# ------------------------------------------------------------------ parameters

PARAM_CASES = [
    ({"dry_run": True}, "dry_run belong to the ops push"),
    ({"skus": ["SKU-0000001"]}, "skus belong to the ops push"),
    ({"override_guardrails": True, "override_reason": "x"}, "belong to the ops push"),
    ({"page_size": 5}, "page_size=5 is outside the bounds a run may set"),
    ({"freeze_ttl_seconds": 86400}, "freeze_ttl_seconds=86400 is outside the bounds"),
    ({"unsent_order_cutoff_hours": "24"}, "must be a number"),
    ({"<img src=x onerror=alert(1)>": 1}, "unknown run parameter(s): '<img src=x onerror=alert(1)>'"),
]


@pytest.mark.parametrize(("conf", "fragment"), PARAM_CASES, ids=[str(i) for i in range(len(PARAM_CASES))])
def test_the_nightly_refuses_bad_parameters_at_its_first_task(dagbag: Any, shop: dict[str, Any],
                                                               double: ScriptedWms, conf: dict[str, Any],
                                                               fragment: str, webhook: Any) -> None:
    from airflow.utils.state import DagRunState

    double.serve_walk(shop["items"], PAGE)
    dag_run = run_nightly(dagbag, conf)
    assert dag_run.state == DagRunState.FAILED
    assert task_tries(dag_run, "freeze_checkout") == 1
    assert stock_fingerprint(shop["dsn"]) == shop["fingerprint"]
    assert active_freezes(shop["dsn"]) == []
    assert double.requests == []  # the WMS was never asked
    alert = next(a for a in alerts_for(webhook, dag_run.run_id) if a["task_id"] == "freeze_checkout")
    assert chat_escaped(fragment) in alert["error"]


def chat_escaped(text: str) -> str:
    """What a Slack-style chat message must carry for text: `&`, `<` and `>` as entities (Slack's
    "Escaping text" rules), so a parameter name cannot become markup or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_pages_stamped_apart_are_refused_when_configured_so(shop: dict[str, Any], double: ScriptedWms,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`snapshot_page_times: refuse`: pages of one snapshot id three microseconds apart fail the
    run at once, and the message says what to configure for a WMS that stamps each page."""
    monkeypatch.setenv("STOCKSYNC_SNAPSHOT_PAGE_TIMES", "refuse")
    base = datetime.now(timezone.utc) - timedelta(minutes=10)
    double.answers = {
        None: Answer(body=page_body(shop["items"][:PAGE], taken_at=iso(base), next_cursor="c1")),
        "c1": Answer(body=page_body(shop["items"][PAGE:], taken_at=iso(base + timedelta(microseconds=3))))}
    refused_by_step(shop, double, "extract_wms_counts", "mixes snapshot times", "page 2 (cursor 'c1')",
                    "snapshot_page_times: earliest", "STOCKSYNC_SNAPSHOT_PAGE_TIMES")
