"""The benchmarks leave the machine as they found it: they work in a database of their own
on the checkout's cluster, on the demo's port setting ($STOCKSYNC_PG_PORT), drop it, and stop every
server they started; a cluster that was already running (the demo's) stays up with its data.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devstack.local_pg import LOCAL_DIR, PORT_SETTING, LocalPostgres, checkout_cluster, scratch_database
from devstack.local_stack import free_port

# The two benchmark runs below start, use and drop the same thing: the checkout's own cluster and its
# `bench` database. On two workers at once, the first to finish dropped the other's database
# mid-run: the module runs whole on one worker (tests/workers.py).
pytestmark = pytest.mark.xdist_group("checkout_cluster")

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A `.local/`-like directory of the test's own, its cluster on a free port."""
    path = LOCAL_DIR / f"test-bench-{secrets.token_hex(4)}"
    monkeypatch.setenv(PORT_SETTING, str(free_port()))
    yield path
    for cluster in (path / "pg").glob("*"):
        LocalPostgres(name=cluster.name, local_dir=path).stop()
    shutil.rmtree(path, ignore_errors=True)


def databases(pg: LocalPostgres) -> set[str]:
    with psycopg.connect(pg.dsn("postgres")) as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database")}


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_cluster_it_started_is_stopped_and_its_database_dropped(scratch: Path) -> None:
    port = int(os.environ[PORT_SETTING])
    with scratch_database("bench_a", local_dir=scratch) as pg:
        assert pg.port == port  # the demo's setting
        assert pg.datadir == checkout_cluster(local_dir=scratch).datadir  # the checkout's cluster, not one more
        with psycopg.connect(pg.dsn()) as conn:
            conn.execute("CREATE TABLE t AS SELECT 1 AS v")
    assert not pg.is_running()
    assert not listening(port)
    cluster = checkout_cluster(local_dir=scratch).start()
    try:
        assert "bench_a" not in databases(cluster)
    finally:
        cluster.stop()


def test_a_running_cluster_stays_up_with_the_demo_data(scratch: Path) -> None:
    demo = checkout_cluster(local_dir=scratch).start()
    try:
        with psycopg.connect(demo.dsn()) as conn:
            conn.execute("CREATE TABLE kept AS SELECT 'demo data'::text AS v")
        with scratch_database("bench_b", local_dir=scratch) as pg:
            assert pg.port == demo.port
            assert "bench_b" in databases(pg)
        assert demo.is_running()
        assert "bench_b" not in databases(demo)
        with psycopg.connect(demo.dsn()) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("demo data",)]
    finally:
        demo.stop()


def test_keep_leaves_the_database_and_a_taken_port_is_named(scratch: Path, capfd: pytest.CaptureFixture[str]) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", int(os.environ[PORT_SETTING])))
    taken.listen()
    try:
        with scratch_database("bench_c", keep=True, local_dir=scratch) as pg:
            assert pg.port != int(os.environ[PORT_SETTING])
        assert f"port {os.environ[PORT_SETTING]} is taken" in capfd.readouterr().err
    finally:
        taken.close()
    cluster = checkout_cluster(local_dir=scratch).start(allow_other_port=True)
    try:
        assert "bench_c" in databases(cluster)
    finally:
        cluster.stop()


# Set in the benchmark's environment, which its servers inherit: the scan below finds this test's
# benchmark servers only, not those of tests running beside it (pytest-xdist workers, other checkouts).
BENCH_MARK = "STOCKSYNC_TEST_BENCH_MARK"


def bench_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), BENCH_MARK: secrets.token_hex(8)}


def our_servers(env: dict[str, str]) -> set[int]:
    """Processes a benchmark could leave behind: the checkout's PostgreSQL, the WMS simulator,
    the benchmark itself, started with `env` (its mark in their environment)."""
    main = str(checkout_cluster().datadir)
    mark = f"{BENCH_MARK}={env[BENCH_MARK]}".encode()
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
            environ = (cmdline.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(argv).decode(errors="replace")
        if mark in environ and ("devstack.wms_service" in text or "scripts/benchmark.py" in text or (
                "postgres" in text and main in text)):
            found.add(int(cmdline.parent.name))
    return found


def measuring_worker(pids: set[int]) -> bool:
    """Whether one of `pids` is the benchmark's measuring worker (`scripts/benchmark.py --worker`)."""
    for pid in pids:
        try:
            if b"--worker" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                return True
        except OSError:
            continue
    return False


@pytest.mark.slow
def test_the_benchmark_stops_every_server_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real benchmark at a tiny size: results written, nothing of it running afterwards."""
    cluster = checkout_cluster()
    was_running = cluster.is_running()
    if not was_running:
        monkeypatch.setenv(PORT_SETTING, str(free_port()))
    env = bench_env()
    before = our_servers(env)
    result = subprocess.run([sys.executable, "scripts/benchmark.py", "--sizes", "2000", "--baseline-size", "2000",
                             "--baseline-repetitions", "1", "--out", str(tmp_path)],
                            cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "results.json").read_text())
    (size,) = summary["results"]
    assert size["skus"] == 2000 and set(size["stages"]) == {"extract", "validate", "merge", "load"}
    assert size["baselines"]["rows"] > 0
    assert our_servers(env) - before == set()
    assert checkout_cluster().is_running() == was_running
    if was_running:
        assert "bench" not in databases(checkout_cluster().start())


@pytest.mark.slow
def test_a_terminated_benchmark_stops_every_server_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kill (SIGTERM) in the middle of a size: the benchmark unwinds and stops its servers too."""
    import signal
    import time

    if not checkout_cluster().is_running():
        monkeypatch.setenv(PORT_SETTING, str(free_port()))
    was_running = checkout_cluster().is_running()
    env = bench_env()
    before = our_servers(env)
    bench = subprocess.Popen([sys.executable, "scripts/benchmark.py", "--sizes", "50000", "--out", str(tmp_path)],
                             cwd=PROJECT_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert bench.stdout is not None
        seen = []
        for line in bench.stdout:  # killed once the measuring worker runs
            seen.append(line)
            if "seeded in" in line:
                break
        assert any("seeded in" in line for line in seen), "".join(seen)[-3000:]
        deadline = time.monotonic() + 60  # the measuring worker starts right after the seeding
        while not measuring_worker(our_servers(env) - before) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert our_servers(env) - before, "the benchmark should have its servers running now"
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=120) != 0
    finally:
        if bench.poll() is None:
            bench.kill()
    assert our_servers(env) - before == set()
    assert checkout_cluster().is_running() == was_running
