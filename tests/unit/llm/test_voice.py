"""Voice calls: the offline speakers (tone generator, espeak-ng) and scripted transcribers,
real litellm speech and transcription calls against a loopback server speaking the OpenAI
audio API (failing, then falling back), spans and ``usage()`` rows with audio seconds,
characters and cost, the notebook player, and one clear line for bad input."""

from __future__ import annotations

import hashlib
import json
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

import pytest

import fm_lab
from fm_lab.audio import Audio
from fm_lab.exceptions import NodeError
from fm_lab.llm import script_transcription, speak, transcribe
from fm_lab.llm.voice_audio import MAX_AUDIO_BYTES, AudioInputError
from fm_lab.llm.voice_offline import espeak_path, tone
from fm_lab.tracing.spans import SpanContext, activate, deactivate

HEARD = {"text": " The parcel left Lyon. ", "language": "english", "duration": 2.5,
         "segments": [{"id": 0, "start": 0.0, "end": 1.25, "text": " The parcel"},
                      {"id": 1, "start": 1.25, "end": 2.5, "text": " left Lyon."}]}


class OpenAIAudio(BaseHTTPRequestHandler):
    """``POST /v1/audio/speech`` answers WAV, ``/v1/audio/transcriptions`` verbose JSON;
    with ``failing`` set every request gets a 503."""

    failing = False
    requests: list[tuple[str, bytes]] = []
    base = ""

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/clips/question.wav":
            self._send(200, tone("Where is my parcel?"), "audio/wav")
        else:
            self._send(404, b"not here", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).requests.append((self.path, body))
        if type(self).failing:
            self._send(503, b'{"error": {"message": "overloaded"}}', "application/json")
        elif self.path == "/v1/audio/speech":
            self._send(200, tone(json.loads(body)["input"], "low"), "audio/wav")
        elif self.path == "/v1/audio/transcriptions":
            self._send(200, json.dumps(HEARD).encode(), "application/json")
        else:
            self._send(404, b"{}", "application/json")


@pytest.fixture
def openai_audio(monkeypatch) -> Iterator[type[OpenAIAudio]]:
    """A loopback server for litellm's ``openai`` provider (its real HTTP client)."""
    handler = type("Handler", (OpenAIAudio,), {"failing": False, "requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    handler.base = f"http://127.0.0.1:{httpd.server_port}"
    monkeypatch.setenv("OPENAI_BASE_URL", f"{handler.base}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback-test")
    yield handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def spans():
    """The spans voice calls write, as a run's node would collect them."""
    records: list[dict] = []
    token = activate(SpanContext("0" * 32, "1" * 16, "run-x", records.append))
    yield records
    deactivate(token)


def _wav_seconds(data: bytes) -> float:
    with wave.open(BytesIO(data)) as reader:
        return reader.getnframes() / reader.getframerate()


def test_the_tone_generator_is_deterministic_wav():
    first, again = tone("Hello there"), tone("Hello there")
    assert first == again and first[:4] == b"RIFF" and first[8:12] == b"WAVE"
    assert _wav_seconds(first) == pytest.approx(11 * 0.06)
    assert tone("Hello there", "high") != first
    assert _wav_seconds(tone("Hello there", speed=2.0)) == pytest.approx(11 * 0.03)


def test_speak_then_transcribe_back_with_a_scripted_transcriber(spans, tmp_path):
    clip = speak("Your order ships today.", model="offline/tone", path=tmp_path / "say.wav")
    assert isinstance(clip, Audio) and clip.path == str(tmp_path / "say.wav")
    assert clip["sha256"] == hashlib.sha256(clip.read()).hexdigest()
    assert clip.seconds == pytest.approx(23 * 0.06) and clip["characters"] == 23
    clerk = script_transcription("voice-clerk", {clip["sha256"]: "Your order ships today."})
    heard = transcribe(clip, model=clerk)
    assert heard.text == "Your order ships today." and heard.model == clerk
    assert heard.language == "en" and heard.seconds == pytest.approx(clip.seconds)
    assert heard.segments == [{"start": 0.0, "end": pytest.approx(clip.seconds, abs=1e-3),
                               "text": "Your order ships today."}]
    speech, transcription = spans
    assert (speech["kind"], speech["model"], speech["provider"]) == (
        "speech", "offline/tone", "offline")
    assert speech["attrs"]["fm_lab.characters"] == 23
    assert speech["attrs"]["fm_lab.audio_seconds"] == pytest.approx(clip.seconds, abs=1e-3)
    assert transcription["kind"] == "transcription"
    assert transcription["input"]["audio"]["sha256"] == clip["sha256"]
    assert "data" not in json.dumps(transcription["input"])  # the bytes never reach a span


def test_an_unscripted_offline_transcriber_hears_what_offline_speech_said():
    clip = speak("Meet at noon.", model="offline/tone", voice="high")
    assert transcribe(clip.path).text == "Meet at noon."  # default: offline/transcriber
    other = tone("never said offline")
    with pytest.raises(NodeError, match=r"every model failed .*no transcript for audio"):
        transcribe(other)
    fallback = script_transcription("voice-default", default="(inaudible)")
    assert transcribe(other, fallbacks=[fallback]).text == "(inaudible)"


def test_without_espeak_the_offline_voice_is_the_tone_generator(monkeypatch):
    monkeypatch.setenv("PATH", "")  # no espeak-ng to be found
    assert espeak_path() is None
    clip = speak("Hello there")
    assert clip["model"] == "offline/voice" and clip.read() == tone("Hello there")
    with pytest.raises(NodeError, match=r"^offline/espeak needs espeak-ng on PATH"):
        speak("Hello there", model="offline/espeak")
    assert speak("Hi", model="offline/espeak", fallbacks=["offline/tone"]).read() == tone("Hi")


def test_audio_is_read_from_a_url(openai_audio):
    base = openai_audio.base
    clerk = script_transcription("voice-url", {tone("Where is my parcel?"): "Where is it?"})
    assert transcribe(f"{base}/clips/question.wav", model=clerk).text == "Where is it?"
    with pytest.raises(NodeError, match=r"^audio URL .*/clips/gone.wav answered HTTP 404$"):
        transcribe(f"{base}/clips/gone.wav", model=clerk)


@pytest.mark.skipif(espeak_path() is None, reason="espeak-ng is not installed (.ci/run "
                    "installs it); the tone generator is tested without it")
def test_espeak_speaks_deterministic_wav_in_a_chosen_language():
    english = speak("Good morning", model="offline/espeak")
    assert english.read()[:4] == b"RIFF" and english.seconds > 0.3
    assert speak("Good morning", model="offline/espeak").read() == english.read()
    german = speak("Good morning", model="offline/espeak", voice="de")
    assert german["sha256"] != english["sha256"]
    assert speak("Good morning").read() == english.read()  # offline/voice takes espeak


def test_speech_through_litellm_falls_back_from_a_failing_provider(openai_audio, spans):
    openai_audio.failing = True
    clip = speak("Refund approved.", model="openai/tts-1", fallbacks=["offline/tone"],
                 retries=1, backoff_s=0.01)
    assert clip["model"] == "offline/tone" and clip.read() == tone("Refund approved.")
    assert [path for path, _ in openai_audio.requests] == ["/v1/audio/speech"] * 2
    assert json.loads(openai_audio.requests[0][1])["voice"] == "alloy"
    failed = [s for s in spans if s["status"] == "error"]
    assert [(s["model"], s["attrs"]["attempt"]) for s in failed] == [
        ("openai/tts-1", 1), ("openai/tts-1", 2)]
    assert all(s["error"]["type"] == "ServiceUnavailableError" for s in failed)
    assert [s["model"] for s in spans if s["status"] == "ok"] == ["offline/tone"]


def test_speech_and_transcription_through_litellm_are_priced_per_character_and_second(
        openai_audio, spans):
    clip = speak("Refund approved.", model="openai/tts-1", voice="nova")
    assert clip.read() == tone("Refund approved.", "low")  # what the server answered
    assert clip["cost_usd"] == pytest.approx(16 * 15e-6)  # tts-1: per character
    heard = transcribe(clip, model="whisper-1", language="en")
    assert heard.text == "The parcel left Lyon." and heard.language == "english"
    assert heard.seconds == 2.5 and heard.cost_usd == pytest.approx(2.5 * 1e-4)
    assert [s["text"] for s in heard.segments] == ["The parcel", "left Lyon."]
    assert [p for p, _ in openai_audio.requests] == ["/v1/audio/speech",
                                                     "/v1/audio/transcriptions"]
    assert b'name="language"' in openai_audio.requests[1][1]
    assert [s["cost_usd"] for s in spans] == [clip["cost_usd"], heard.cost_usd]


def test_usage_has_rows_for_voice_calls_with_seconds_characters_and_cost(openai_audio,
                                                                       tmp_path, monkeypatch):
    monkeypatch.setattr("fm_lab.store.default._STORE", None)
    store = fm_lab.connect(tmp_path / "voice.duckdb")
    said = speak("Hello from the loopback.", model="tts-1")
    transcribe(said, model="whisper-1")
    offline = speak("Hi", model="offline/tone")
    rows = fm_lab.usage(store=store).set_index("model")
    assert rows.loc["tts-1", "characters"] == 24 and rows.loc["tts-1", "calls"] == 1
    assert rows.loc["tts-1", "cost_usd"] == pytest.approx(24 * 15e-6)
    assert rows.loc["tts-1", "audio_seconds"] == pytest.approx(said.seconds, abs=1e-3)
    assert rows.loc["whisper-1", "audio_seconds"] == pytest.approx(2.5)
    assert rows.loc["whisper-1", "cost_usd"] == pytest.approx(2.5e-4)
    assert bool(rows.loc["whisper-1", "priced"]) and bool(rows.loc["tts-1", "priced"])
    assert rows.loc["offline/tone", "audio_seconds"] == pytest.approx(offline.seconds,
                                                                      abs=1e-3)
    assert not bool(rows.loc["offline/tone", "priced"])
    assert set(fm_lab.traces(store=store)["kind"]) == {"speech", "transcription"}


def test_the_audio_output_is_a_notebook_player(tmp_path):
    clip = speak("Play me.", model="offline/tone", path=tmp_path)
    assert clip.path.startswith(str(tmp_path)) and clip.path.endswith(".wav")
    shown = clip._repr_html_()
    assert "<audio" in shown and "controls" in shown and "data:audio/x-wav;base64," in shown
    assert clip.path in shown
    assert type(clip.player()).__module__ == "IPython.lib.display"
    gone = Audio(path=str(tmp_path / "gone.wav"), format="wav")
    assert gone._repr_html_() == f"<p>audio file missing: {tmp_path / 'gone.wav'}</p>"


@pytest.mark.parametrize(("call", "message"), [
    (lambda tmp: transcribe(tmp / "missing.wav"), "audio file not found: .*missing.wav$"),
    (lambda tmp: transcribe(b"just some text, not audio"),
     r"^audio bytes: not audio \(expected wav, mp3.*, 25 bytes of something else\)$"),
    (lambda tmp: transcribe(b""), "^audio bytes: empty, not audio$"),
    (lambda tmp: transcribe(b"RIFF\x00\x00\x00\x00WAVEjunk"), "not readable WAV audio$"),
    (lambda tmp: transcribe({"text": "hi"}), "needs a 'path'"),
    (lambda tmp: transcribe(3.5), "audio must be bytes, a file path, a URL or an Audio"),
    (lambda tmp: speak("hi", format="mp4"), "^unknown audio format 'mp4'; choose from mp3, "),
    (lambda tmp: speak("   "), "^nothing to say: the text is empty$"),
    (lambda tmp: speak("a" * 5000), "5000 characters, beyond the 4096"),
    (lambda tmp: speak("hi", model="offline/tone", voice="alto"),
     r"^unknown voice 'alto' for offline/tone; choose from default, low, high \(asked "),
    (lambda tmp: speak("hi", model="offline/tone", format="mp3"),
     "offline/tone writes wav audio only, not 'mp3'"),
])
def test_bad_input_gets_one_clear_line(tmp_path, call, message):
    with pytest.raises(NodeError, match=message) as caught:
        call(tmp_path)
    assert caught.value.kind == "user" and not caught.value.retryable
    assert "\n" not in str(caught.value)


def test_a_file_beyond_the_limit_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.wav"
    with huge.open("wb") as out:
        out.truncate(MAX_AUDIO_BYTES + 1)
    with pytest.raises(AudioInputError, match=r"huge.wav: 25.0 MiB, beyond the 25 MiB"):
        transcribe(huge)


@pytest.mark.skipif(espeak_path() is None, reason="espeak-ng is not installed")
def test_an_unknown_espeak_voice_is_named():
    with pytest.raises(NodeError,
                       match=r"^unknown voice .no-such-tongue. for offline/espeak; "):
        speak("hi", model="offline/espeak", voice="no-such-tongue")
