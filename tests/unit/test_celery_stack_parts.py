"""Parts of the native Celery stack (devstack/celery_stack.py) that are cheap to prove on their own:
Redis keeps its password off every command line, and a new stack ends what a crashed owner left
running without touching a process that merely reuses a recorded pid."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
from pathlib import Path

import psutil

from devstack.celery_stack import LocalRedis, reap_leftovers
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
