"""The command line's failures: one line on stderr, exit code 1, no password, whatever the
connection string (a malformed one's error quoted it whole); arguments that contradict or go out of
range refused by the parser (exit code 2) before anything runs."""

from __future__ import annotations

import pytest

from include.stocksync.cli import main, redacted
from tests.conftest import free_port

SECRET = "S3cret-pw"


@pytest.mark.parametrize("dsn", [
    f"postgresql://admin:{SECRET}%ZZ@127.0.0.1:1/x",       # a bad percent-escape: the error quotes the token
    f"postgresql://admin:{SECRET}@[::1:1/x",               # a broken IPv6 host: the error quotes the URI
    f"host=127.0.0.1 port=1 password={SECRET} PW",         # an unquoted space: the error quotes the second word
    "postgresql://admin:{s}@127.0.0.1:{p}/x",              # well formed, the server down
], ids=["percent", "ipv6", "keyword-space", "down"])
def test_a_database_failure_is_one_line_without_the_password(dsn: str, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STOCKSYNC_DSN", dsn.format(s=SECRET, p=free_port()))
    assert main(["db", "pending"]) == 1
    out, err = capsys.readouterr()
    assert SECRET not in out + err and "PW" not in err.replace("***", "")
    assert err.startswith("stocksync: ") and "Traceback" not in err


def test_what_shapes_a_password_is_redacted_in_any_text() -> None:
    env = {"STOCKSYNC_SHOP_DSN": "postgresql://u:p4ss@h/db", "STOCKSYNC_WMS_TOKEN": "tok-123",
           "AIRFLOW_CONN_X": '{"conn_type": "postgres", "password": "conn-pw"}'}
    text = "p4ss tok-123 conn-pw postgresql://v:other@h/db password=other2 host=h"
    assert redacted(text, env) == "*** *** *** postgresql://v:***@h/db password=*** host=h"


@pytest.mark.parametrize(("argv", "message"), [
    (["orders", "dead-letters", "--limit", "-1"], "not from 1 to 100000"),
    (["orders", "dead-letters", "--limit", "99999999999999999999"], "not from 1 to 100000"),
    (["orders", "requeue", "2", "--all"], "not both"),
])
def test_contradicting_or_out_of_range_arguments_are_refused_before_anything_runs(
        argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STOCKSYNC_SHOP_DSN", f"postgresql://u:p@127.0.0.1:{free_port()}/x")  # never reached
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2 and message in capsys.readouterr().err
