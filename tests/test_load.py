"""The app under load: eight gradio_client clients at once, round after round, on a server started here.

Every request must be answered, or refused at once with Gradio's "queue is full" (the server is busy) —
none lost, none failing otherwise; the server must still answer afterwards, and its memory must not grow
from round to round. The app gets a small queue (QUEUE_SIZE) so that eight clients do overflow it and the
refusal is tried for real. The load itself stops by LOAD_SECONDS whatever happens.

With EMOTION_LOAD_REPORT=path the latency figures are also written there as JSON (BENCHMARKS.md's table).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile

from emotion.audio import SAMPLE_RATE
from emotion.bench import timing_weights
from emotion.synth import synthesize

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 8
ROUNDS = 12
# Clients alternate endpoints, so only after two rounds has every client (one Gradio session each) uploaded
# a clip and judged a text once; what the server allocates up to then is warm-up, not growth.
WARM_ROUNDS = 2
QUEUE_SIZE = 2  # events waiting to run: eight clients at once overflow it
LOAD_SECONDS = 60  # the whole load, all rounds: a request unanswered by then counts as lost
START_TIMEOUT_S = 240  # import, Whisper and both models, and the warm-up, on a slow two-core machine
# RSS of the server after the last round over its highest in the warm rounds. Gradio keeps a little per
# session and per upload (~40 MB over twenty rounds, flat after the first ten); a leak of clip-sized buffers
# (a few MB per request, 8 a round, for ten rounds) crosses this.
MEMORY_GROWTH_MB = 64
BUSY = "queue is full"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, psutil.Process]]:
    """`python app.py` on a free loopback port, as a user starts it; stopped (its session only) at the end."""
    scratch = Path(tempfile.mkdtemp(prefix="load-test-"))
    weights, _ = timing_weights(scratch)
    port = _free_port()
    environment = os.environ | {
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_TEMP_DIR": str(scratch / "gradio"),
        "EMOTION_WEIGHTS_DIR": str(weights),
        "EMOTION_APP_CONCURRENCY": "1",
        "EMOTION_APP_QUEUE_SIZE": str(QUEUE_SIZE),
        "EMOTION_MAX_CLIP_SECONDS": "20",
    }
    log_path = scratch / "app.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    address = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(process, address, log_path)
        yield address, psutil.Process(process.pid)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def _wait_until_up(process: subprocess.Popen, address: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(address, timeout=5):
                return
        except OSError:
            time.sleep(1)
    pytest.fail(f"app.py did not answer within {START_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("load") / "speech.wav"
    speech = synthesize("I am really happy today, everything went wonderfully well.", "en")
    soundfile.write(path, speech[: 3 * SAMPLE_RATE], SAMPLE_RATE)
    return path


def _request(client, number: int, clip: Path, deadline: float) -> tuple[str, str, float, str]:
    """(endpoint, outcome, seconds, detail): outcome is "answered", "busy", "lost" or "failed"."""
    from gradio_client import handle_file

    if number % 2:
        endpoint, arguments = "/sentiment", ("What a wonderful, happy day this is.", "auto")
    else:
        endpoint, arguments = "/analyze", (handle_file(str(clip)), "auto", 0.3)
    started = time.monotonic()
    try:
        job = client.submit(*arguments, api_name=endpoint)
        result = job.result(timeout=max(0.1, deadline - time.monotonic()))
    except TimeoutError:
        return endpoint, "lost", time.monotonic() - started, "no answer before the load's deadline"
    except Exception as error:  # gradio_client raises several types; the message says which refusal it is
        outcome = "busy" if BUSY in str(error).lower() else "failed"
        return endpoint, outcome, time.monotonic() - started, f"{type(error).__name__}: {error}"
    elapsed = time.monotonic() - started
    good = isinstance(result, dict) and ("speech" if endpoint == "/analyze" else "label") in result
    return endpoint, "answered" if good else "failed", elapsed, "" if good else json.dumps(result)[:300]


def _rss_mb(process: psutil.Process) -> float:
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def test_eight_clients_are_answered_or_told_busy(server, clip):
    from gradio_client import Client

    address, process = server
    # download_files=False, as a developer uses the API (README): otherwise gradio_client takes /analyze's
    # JSON, which holds the clip's path, for a file, downloads it and hands back that path instead.
    clients = [Client(address, verbose=False, download_files=False) for _ in range(CLIENTS)]
    deadline = time.monotonic() + LOAD_SECONDS
    records, memory = [], []
    with ThreadPoolExecutor(CLIENTS) as pool:
        for round_ in range(ROUNDS):
            if time.monotonic() > deadline - 5:
                break
            # Half the clients analyse a clip and half judge a text, swapping each round.
            jobs = [pool.submit(_request, c, i + round_, clip, deadline) for i, c in enumerate(clients)]
            records += [job.result() for job in jobs]
            memory.append(_rss_mb(process))

    summary = _summary(records, memory)
    print(f"\nload: {json.dumps(summary)}")
    if os.environ.get("EMOTION_LOAD_REPORT"):
        Path(os.environ["EMOTION_LOAD_REPORT"]).write_text(json.dumps(summary, indent=2) + "\n")

    problems = [r for r in records if r[1] in ("lost", "failed")]
    assert not problems, f"requests lost or failed: {problems}"
    assert summary["answered"] > 0
    assert len(memory) >= WARM_ROUNDS + 3, f"only {len(memory)} rounds fitted in {LOAD_SECONDS} s: too few"
    assert process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    # Still up: a fresh client gets an answer once the load is over.
    after = Client(address, verbose=False).predict("I feel great.", "auto", api_name="/sentiment")
    assert "label" in after
    # From the highest RSS while warming: one reading jitters by ~20 MB; a dip there is not growth.
    growth = memory[-1] - max(memory[:WARM_ROUNDS])
    assert growth < MEMORY_GROWTH_MB, (
        f"server memory grew {growth:.0f} MB after the warm rounds: {[round(m) for m in memory]}"
    )


def _summary(records: list[tuple[str, str, float, str]], memory: list[float]) -> dict:
    summary: dict = {"clients": CLIENTS, "rounds": len(memory), "requests": len(records)}
    for outcome in ("answered", "busy", "lost", "failed"):
        summary[outcome] = sum(r[1] == outcome for r in records)
    for endpoint in ("/analyze", "/sentiment"):
        seconds = [r[2] for r in records if r[0] == endpoint and r[1] == "answered"]
        if seconds:
            p50, p95 = np.percentile(seconds, [50, 95])
            summary[endpoint] = {
                "answered": len(seconds),
                "busy": sum(r[0] == endpoint and r[1] == "busy" for r in records),
                "p50_s": round(float(p50), 2),
                "p95_s": round(float(p95), 2),
                "max_s": round(max(seconds), 2),
            }
    busy = [r[2] for r in records if r[1] == "busy"]
    summary["busy_refusal_max_s"] = round(max(busy), 2) if busy else None
    summary["server_rss_mb_by_round"] = [round(m) for m in memory]
    summary["load_average"] = [round(v, 2) for v in os.getloadavg()]
    return summary
