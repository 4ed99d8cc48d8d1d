"""One `python app.py` for the whole test run, shared by test_app.py and test_browser.py.

The app is started exactly as a user starts it, in a subprocess on a free loopback port, so its models load
once for every test. It gets small limits (clip length, upload size) so that the tests can cross them with
small files. Without trained weights the app cannot start, and the tests that need it are skipped, saying so.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from functools import cache
from pathlib import Path

import pytest

from emotion import settings

ROOT = Path(__file__).resolve().parents[1]
MAX_CLIP_SECONDS = 20
MAX_UPLOAD_MB = 2
START_TIMEOUT_S = 240  # import, Whisper and both models, and the warm-up, on a slow two-core machine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def missing_weights() -> list[str]:
    """The trained weights that app.py loads and this checkout lacks."""
    # emotion/text.py reads weights/text/, or weights/ itself when the files lie there
    flat = (settings.WEIGHTS_DIR / "zh.pt").exists() and not (settings.WEIGHTS_DIR / "text").is_dir()
    text = settings.WEIGHTS_DIR if flat else settings.WEIGHTS_DIR / "text"
    needed = [settings.WEIGHTS_DIR / f"speech_{settings.SPEECH_MODEL}.pt"]
    needed += [
        text / f"{code}{suffix}"
        for code in ("zh", "en")
        for suffix in (".pt", "-vocab.json", "-settings.json")
    ]
    return [str(path.relative_to(settings.WEIGHTS_DIR.parent)) for path in needed if not path.exists()]


@cache
def url() -> str:
    """Start the app (once per test process) and return its address when it answers."""
    if missing := missing_weights():
        pytest.skip(
            f"app.py needs trained weights: {', '.join(missing)} (python -m train.speech, train.text)"
        )
    scratch = Path(tempfile.mkdtemp(prefix="app-test-"))
    port = _free_port()
    environment = os.environ | {
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "EMOTION_MAX_CLIP_SECONDS": str(MAX_CLIP_SECONDS),
        "EMOTION_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
        "GRADIO_TEMP_DIR": str(scratch / "gradio"),
    }
    log = (scratch / "app.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    atexit.register(_stop, process, scratch)
    address = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{log_text(scratch)}")
        try:
            with urllib.request.urlopen(address, timeout=5):
                return address
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"app.py did not answer within {START_TIMEOUT_S} s:\n{log_text(scratch)}")


def log_text(scratch: Path) -> str:
    return (scratch / "app.log").read_text(errors="replace")[-5000:]


def _stop(process: subprocess.Popen, scratch: Path) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the app's own session: it and nothing else
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    shutil.rmtree(scratch, ignore_errors=True)
