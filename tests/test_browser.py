"""The page in a real browser: Debian's Chromium driven by Playwright (no `playwright install`), against the
app launched by the tests (tests/app_server.py). Selectors for gr.Audio: /work/shared/NOTES.md."""

import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
import soundfile

from emotion import settings
from emotion.audio import SAMPLE_RATE
from emotion.labels import EMOTIONS, bilingual
from tests import app_server

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TIMEOUT_MS = 120_000  # an analysis on a slow CI machine, after the page's own start
AUDIO = "#audio_in"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def capture_wav(tmp_path_factory, english_speech) -> Path:
    """What Chromium's fake microphone plays: the speech, then a second of quiet, over and over."""
    path = tmp_path_factory.mktemp("mic") / "capture.wav"
    soundfile.write(path, list(english_speech) + [0.0] * SAMPLE_RATE, SAMPLE_RATE)
    return path


@pytest.fixture(scope="module")
def chromium(capture_wav):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={capture_wav}",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def app_page(chromium):
    """A fresh page on the app; every request that would leave this machine is refused and remembered."""
    context = chromium.new_context(permissions=["microphone"], viewport={"width": 1280, "height": 1600})
    context.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []

    def route(request_route):
        url = request_route.request.url
        if (
            urlparse(url).scheme in ("http", "https", "ws", "wss")
            and urlparse(url).hostname not in LOCAL_HOSTS
        ):
            outside.append(url)
            request_route.abort()
        else:
            request_route.continue_()

    context.route("**/*", route)
    page = context.new_page()
    page.goto(app_server.url(), wait_until="load")
    page.locator(AUDIO).wait_for()
    yield page
    context.close()
    assert outside == [], f"the page tried to load from the internet: {outside}"


def _analyze_and_wait(page) -> str:
    page.locator(f'{AUDIO} a[data-testid="download-link"]').wait_for(state="attached")
    page.locator("#analyze_button").click()
    heading = page.locator('#fused_label [data-testid="label-output-value"]')
    names = [bilingual(emotion) for emotion in EMOTIONS]
    page.wait_for_function(
        "([selector, names]) => names.includes(document.querySelector(selector)?.textContent.trim())",
        arg=['#fused_label [data-testid="label-output-value"]', names],
        timeout=TIMEOUT_MS,
    )
    # the plots arrive in the step after the label: wait until each image has decoded
    for plot in ("#waveform_plot", "#mfcc_plot", "#mel_plot"):
        page.wait_for_function(
            "selector => { const image = document.querySelector(selector + ' img');"
            " return image && image.complete && image.naturalWidth > 0; }",
            arg=plot,
            timeout=TIMEOUT_MS,
        )
    return heading.text_content().strip()


def test_upload_analyze_and_see_every_output(app_page, speech_wav):
    page = app_page
    page.locator(f'{AUDIO} button[aria-label="Upload file"]').click()
    page.locator(f'{AUDIO} input[type="file"]').set_input_files(str(speech_wav))
    fused = _analyze_and_wait(page)
    assert fused in {bilingual(emotion) for emotion in EMOTIONS}
    transcript = page.locator("#transcript textarea")
    assert "happy" in transcript.input_value().lower()
    assert "English" in page.locator("#transcript").text_content()
    assert settings.SPEECH_MODEL in page.locator("#speech_model").text_content()
    sizes = page.eval_on_selector_all(
        "#waveform_plot img, #mfcc_plot img, #mel_plot img", "images => images.map(i => i.naturalWidth)"
    )
    assert len(sizes) == 3 and min(sizes) >= 400
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-upload.png"), full_page=True)


def test_record_from_the_microphone_and_analyze(app_page):
    page = app_page
    page.locator(f'{AUDIO} button[aria-label="Record audio"]').click()
    page.locator(f"{AUDIO} button.record-button").click()
    page.wait_for_timeout(4500)  # the capture clip once through, most of it
    page.locator(f"{AUDIO} button.stop-button").click()
    fused = _analyze_and_wait(page)
    assert fused in {bilingual(emotion) for emotion in EMOTIONS}
    assert page.locator("#transcript textarea").input_value().strip()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-microphone.png"), full_page=True)


def test_a_silent_clip_shows_what_to_do(app_page, tmp_path):
    page = app_page
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, [0.0] * SAMPLE_RATE * 2, SAMPLE_RATE)
    page.locator(f'{AUDIO} button[aria-label="Upload file"]').click()
    page.locator(f'{AUDIO} input[type="file"]').set_input_files(str(silent))
    page.locator(f'{AUDIO} a[data-testid="download-link"]').wait_for(state="attached")
    page.locator("#analyze_button").click()
    page.get_by_text("is silent").first.wait_for()
