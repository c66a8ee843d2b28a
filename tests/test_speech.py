"""Mandarin speech: espeak-ng and sox produce telephone audio that holds speech, cached by content; so does an
uploaded recording."""

import time
import wave
from pathlib import Path

import pytest

from switchboard.core.errors import InvalidInput
from switchboard.core.speech import recorded, synthesize
from tests.support.tones import loud_seconds, tone_present
from tests.test_voice import tone_recording

BULLETIN = "山西省气象台发布暴雨橙色预警：预计未来六小时太原市将出现五十毫米以上降水，请注意防范。"


async def test_bulletin_becomes_8khz_speech_once(tmp_path: Path) -> None:
    started = time.perf_counter()
    path = await synthesize(tmp_path, BULLETIN)
    first = time.perf_counter() - started
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        seconds = wav.getnframes() / wav.getframerate()
    assert seconds > 5  # 40-odd syllables of Mandarin
    assert loud_seconds(path) > 0.5 * seconds  # speech, not silence
    started = time.perf_counter()
    assert await synthesize(tmp_path, BULLETIN) == path
    assert time.perf_counter() - started < first / 5  # served from the cache
    assert await synthesize(tmp_path, BULLETIN + "特此通知。") != path


async def test_text_never_reaches_a_command_line(tmp_path: Path) -> None:
    path = await synthesize(tmp_path, '"; rm -rf / ; $(reboot) -w /etc/passwd')
    assert path.parent == tmp_path / "speech" and path.stat().st_size > 1000


@pytest.mark.parametrize("text", ["", "   ", "字" * 5001])
async def test_bad_text_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        await synthesize(tmp_path, text)
    assert info.value.field == "text"


async def test_a_recording_becomes_8khz_telephone_audio_once(tmp_path: Path) -> None:
    upload = tone_recording(1000, 1).content  # 16 kHz stereo
    path = await recorded(tmp_path, upload)
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    assert tone_present(path, 1000)
    assert await recorded(tmp_path, upload) == path and len(list((tmp_path / "speech").iterdir())) == 1
    with pytest.raises(InvalidInput) as info:
        await recorded(tmp_path, b"")
    assert info.value.field == "recording"
