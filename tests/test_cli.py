import json
import subprocess
import sys

import pytest

from emotion.labels import EMOTIONS


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emotion", *arguments], capture_output=True, text=True, timeout=300
    )


def test_analyze_speech_only_keeps_order_and_reports_bad_files(speech_wav, tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_text("not audio at all")
    result = run_cli("analyze", "--no-transcribe", str(speech_wav), str(broken), str(speech_wav))
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(speech_wav), str(broken), str(speech_wav)]
    assert "could not be read" in records[1]["error"]
    for record in (records[0], records[2]):
        assert record["duration_s"] == pytest.approx(3.78, abs=0.05)
        assert set(record["speech"]["scores"]) == set(EMOTIONS)
        assert sum(record["speech"]["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert record["speech"]["label"] == max(
            record["speech"]["scores"], key=record["speech"]["scores"].get
        )
        assert "transcript" not in record
    assert records[0]["speech"] == records[2]["speech"]


def test_analyze_all_good_exits_zero(speech_wav):
    result = run_cli("analyze", "--no-transcribe", str(speech_wav))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_a_bad_option_is_a_usage_error(speech_wav):
    result = run_cli("analyze", "--language", "fr", str(speech_wav))
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_the_speech_model_switch(speech_wav):
    answers = {}
    for model in ("whisper", "acoustic"):
        result = run_cli("analyze", "--no-transcribe", "--speech-model", model, str(speech_wav))
        assert result.returncode == 0, result.stderr
        answers[model] = json.loads(result.stdout)["speech"]
        assert answers[model]["model"] == model
    assert answers["whisper"]["scores"] != answers["acoustic"]["scores"]
    missing = run_cli("analyze", "--speech-model", "nonesuch", str(speech_wav))
    assert missing.returncode == 2 and "No speech model 'nonesuch'" in missing.stderr
