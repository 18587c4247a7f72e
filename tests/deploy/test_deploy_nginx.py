"""The deployment of docs/deploy.md, for real: nginx in front of two receivers on one
PostgreSQL, the dashboard under /rt/, started by scripts/deploy-local.sh.

A ``pytest -n 2 --rt`` run goes through nginx while one receiver is killed (SIGKILL) in
the middle: nginx passes the POSTs it was sending on to the other (POST /loader is
idempotent by event_id), and nothing is lost. A dashboard through nginx is live.
Skipped, saying why, without PostgreSQL (PYTEST_RT_TEST_PG_URL) or when nginx cannot be
installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

import httpx  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
from rt_receivers import pg_schema, wait_until  # noqa: E402
from rt_server_events import Run  # noqa: E402

pytestmark = [pytest.mark.deploy, pytest.mark.postgres]
ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "deploy-local.sh"
TESTS = 300


@dataclass
class Deployment:
    url: str  # the public URL, http://127.0.0.1:PORT/rt/
    dir: Path

    def receiver_pid(self, n: int) -> int:
        return int((self.dir / f"receiver-{n}.pid").read_text())


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    where = tmp_path_factory.mktemp("deploy")
    with pg_schema() as db:
        env = os.environ | {"PYTEST_RT_DEPLOY_DB": db, "PYTEST_RT_SERVE": _serve_command()}
        started = subprocess.run(
            ["bash", str(SCRIPT), "start", str(where)], env=env, capture_output=True,
            text=True, timeout=300,
        )
        try:
            if started.returncode != 0:
                log = where / "install-nginx.log"
                if log.exists() and not (Path("/usr/sbin/nginx").exists()):
                    pytest.skip(f"nginx could not be installed: {log.read_text()[-500:]}")
                pytest.fail(f"deploy-local.sh start failed: {started.stderr[-3000:]}")
            yield Deployment(started.stdout.strip().splitlines()[-1], where)
        finally:
            subprocess.run(["bash", str(SCRIPT), "stop", str(where)], env=env, timeout=120,
                           capture_output=True)


def _serve_command() -> str:
    """This venv's pytest-rt (the one the tests import)."""
    return str(Path(sys.executable).with_name("pytest-rt"))


def test_the_dashboard_under_rt_is_served_through_nginx(deployment: Deployment) -> None:
    with httpx.Client(timeout=10) as client:
        page = client.get(deployment.url)
        assert page.status_code == 200 and 'src="static/jobs.js"' in page.text
        assert client.get(deployment.url + "static/common.js").status_code == 200
        assert client.get(deployment.url + "api/jobs").json()["jobs"] is not None
        moved = client.get(deployment.url.rstrip("/"))
        assert moved.status_code == 301 and moved.headers["location"].endswith("/rt/")


def test_a_dashboard_through_nginx_sees_updates_live(deployment: Deployment) -> None:
    seen: list[dict[str, Any]] = []
    ready, done = threading.Event(), threading.Event()

    def follow() -> None:
        with httpx.Client(timeout=httpx.Timeout(10, read=2.5)) as client, \
                client.stream("GET", deployment.url + "api/events?job=deploy-live") as stream:
            try:
                for line in stream.iter_lines():
                    ready.set()  # nginx passes ': connected' at once (proxy_buffering off)
                    if line.startswith("data: "):
                        seen.append(json.loads(line[6:]))
                    if done.is_set():
                        return
            except httpx.ReadTimeout:
                if not done.is_set():
                    raise

    reader = threading.Thread(target=follow)
    reader.start()
    try:
        assert ready.wait(10), "the event stream did not open through nginx"
        run = Run("deploy-live")
        with httpx.Client(timeout=10) as client:
            # Several POSTs: nginx spreads them over both receivers.
            for event in [run.start_run(["d::a", "d::b"]), *run.passing("d::a"),
                          *run.passing("d::b"), run.stop_run()]:
                assert client.post(deployment.url + "loader", json=event).status_code == 200
        wait_until(lambda: any("job_finished" in m["kinds"] for m in seen), 2.0,
                   "the dashboard through nginx did not see the job finish")
        passed = {t["nodeid"] for m in seen for t in m["tests"] if t["status"] == "passed"}
        assert passed == {"d::a", "d::b"}
    finally:
        done.set()
        reader.join(10)


def test_a_pytest_run_through_nginx_loses_nothing_when_a_receiver_is_killed(
    deployment: Deployment, tmp_path: Path
) -> None:
    (tmp_path / "test_many.py").write_text(
        "import time, pytest\n\n"
        f"@pytest.mark.parametrize('i', range({TESTS}))\n"
        "def test_slowly(i):\n    time.sleep(0.02)\n"
    )
    job_id = "deploy-killed"
    command = [
        sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-p", "no:randomly",
        "--rt", "--rt-url", deployment.url + "loader", "--rt-job-id", job_id,
        "--rt-spool", str(tmp_path / "spool"), "test_many.py",
    ]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as run, httpx.Client(timeout=10) as client:
        try:
            def progressed() -> bool:
                answer = client.get(f"{deployment.url}api/jobs/{job_id}")
                return answer.status_code == 200 and answer.json()["job"]["counts"]["passed"] > 30

            wait_until(progressed, 60, "the run did not reach the receivers through nginx")
            os.kill(deployment.receiver_pid(1), signal.SIGKILL)  # mid-run, unannounced
            output, _ = run.communicate(timeout=180)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(10)
        text = output.decode(errors="replace")
        assert run.returncode == 0, text[-3000:]
        job = client.get(f"{deployment.url}api/jobs/{job_id}").json()["job"]
    assert job["status"] == "passed", job
    assert job["counts"]["passed"] == TESTS and job["total"] == TESTS, job
    # Every event was acknowledged: nothing left for pytest-rt replay.
    assert not list((tmp_path / "spool").glob("**/*.jsonl")), text[-2000:]
    assert "events delivered" in text, text[-2000:]


def test_the_job_page_under_rt_renders_in_a_browser(deployment: Deployment) -> None:
    chromium = Path(os.environ.get("PYTEST_RT_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        pytest.skip("Chromium not found: run scripts/install-chromium.sh")
    sync_api = pytest.importorskip("playwright.sync_api")
    run = Run("deploy-browser")
    with httpx.Client(timeout=10) as client:
        client.post(deployment.url + "loader", json=[run.start_run(["b::one"]),
                                                     *run.passing("b::one"), run.stop_run()])
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium),
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(deployment.url)  # the jobs page, then its link to the job page
            link = page.locator(f'a[href="/rt/jobs/{run.job_id}"]').first
            link.wait_for(timeout=10_000)
            link.click()
            page.wait_for_url(f"**/rt/jobs/{run.job_id}", timeout=10_000)
            page.get_by_text("b::one").first.wait_for(timeout=10_000)
        finally:
            browser.close()
    assert not errors, errors
