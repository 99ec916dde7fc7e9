"""Parts of the native Celery stack (devstack/celery_stack.py) that are cheap to prove on their own:
Redis keeps its password off every command line, a new stack ends what a crashed owner left
running without touching a process that merely reuses a recorded pid, and the stack's supervisor
starts a dead process again (with backoff) while the others keep running."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil

from devstack.celery_stack import AirflowProcess, CeleryStack, LocalRedis, reap_leftovers
from devstack.local_pg import LocalPostgres
from devstack.local_stack import free_port


def test_redis_wants_the_password_which_is_in_no_command_line(tmp_path: Path) -> None:
    server = LocalRedis(tmp_path / "redis", free_port(), local_dir=tmp_path / "local").start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:  # RESP, no client library
            conn.sendall(b"PING\r\n")
            assert conn.recv(100).startswith(b"-NOAUTH")
        assert server.ping()
        assert stat.S_IMODE(server.config.stat().st_mode) == 0o600
        assert server.process is not None
        assert server.password not in " ".join(psutil.Process(server.process.pid).cmdline())
        assert server.password not in server.url.split("@", 1)[1]  # only in the URL's userinfo
    finally:
        server.stop()
    assert server.process is None


def test_leftovers_of_a_crashed_stack_are_ended_and_reused_pids_spared(tmp_path: Path) -> None:
    left = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pidfile = tmp_path / "pids.json"
        pidfile.write_text(json.dumps({
            "scheduler": {"pid": left.pid, "started": psutil.Process(left.pid).create_time()},
            # the same pid number, but a process started at another time: not ours
            "worker-a": {"pid": bystander.pid, "started": psutil.Process(bystander.pid).create_time() - 100},
        }))
        assert reap_leftovers(pidfile, timeout=5) == [left.pid]
        assert left.wait(5) is not None
        assert bystander.poll() is None
        assert not pidfile.exists()
    finally:
        for process in (left, bystander):
            process.kill()
            process.wait(5)


def sleeper(name: str, worker: bool = False) -> AirflowProcess:
    """A stand-in for one Airflow process of the stack: a real process that runs until killed."""
    return AirflowProcess(name, ("-c", "import time; time.sleep(600)"), "none", worker=worker, program=sys.executable)


def test_a_killed_process_is_started_again_with_backoff_and_the_others_keep_running(tmp_path: Path) -> None:
    local = tmp_path / "local"
    stack = CeleryStack(tmp_path / "home", pg=LocalPostgres(name="unused", local_dir=local), shop_dsn="unused",
                        wms_url="http://127.0.0.1:1", token="t", webhook_url="http://127.0.0.1:1", api_port=free_port(),
                        redis_port=free_port(), local_dir=local, workers=())
    stack.processes = [sleeper("scheduler"), sleeper("worker-a", worker=True), sleeper("worker-b", worker=True)]
    stack.logs.mkdir(parents=True)
    stack.launch()
    try:
        before = {name: proc.pid for name, proc in stack.running.items()}
        stack.running["worker-a"].kill()
        stack.running["worker-a"].wait(5)
        t0 = time.monotonic()

        assert stack.supervise_once(now=t0) == []  # noticed; the first restart waits 1 s
        (restart,) = stack.supervise_once(now=t0 + 1.0)
        assert (restart.name, restart.exit_code, restart.after_delay) == ("worker-a", -signal.SIGKILL, 1.0)
        after = {name: proc.pid for name, proc in stack.running.items()}
        assert after["worker-a"] != before["worker-a"] and stack.running["worker-a"].poll() is None
        assert {n: p for n, p in after.items() if n != "worker-a"} == {n: p for n, p in before.items()
                                                                       if n != "worker-a"}
        # dying again at once doubles the delay (a process that crashes on start does not spin)
        stack.running["worker-a"].kill()
        stack.running["worker-a"].wait(5)
        t1 = time.monotonic()
        assert stack.supervise_once(now=t1) == [] and stack.supervise_once(now=t1 + 1.5) == []
        assert [r.after_delay for r in stack.supervise_once(now=t1 + 2.0)] == [2.0]
        assert all(proc.poll() is None for proc in stack.running.values())
    finally:
        stack.stop(timeout=5)
    assert stack.running == {}
    assert stack.supervise_once() == []  # asked to stop: nothing is started again
