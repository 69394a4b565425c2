"""The ``speak`` and ``transcribe`` node types in workflows on a DuckDB store: a text said
by the offline speaker and transcribed back by a scripted transcriber, the audio output
coming back from the store as a notebook player, usage rows for the run, bad configs (on
the root conftest's file store)."""

from __future__ import annotations

import pytest

import fm_lab
from fm_lab.audio import Audio
from fm_lab.llm import script_transcription
from fm_lab.llm.voice_offline import speech
from fm_lab.nodes import default_registry
from fm_lab.spec import Workflow, WorkflowValidationError

TEXT = "Your parcel arrives on Tuesday."


def _round_trip(transcriber: str, model: str = "offline/voice") -> Workflow:
    return Workflow.from_dict({
        "id": "voice_round_trip",
        "inputs": {"type": "object", "properties": {"text": {"type": "string"}}},
        "nodes": {
            "say": {"type": "speak", "config": {"text": "{{ inputs.text }}", "model": model}},
            "hear": {"type": "transcribe",
                     "config": {"audio": "{{ nodes.say.output }}", "model": transcriber}},
        },
        "edges": ["say -> hear"],
    })


def test_the_voice_node_types_are_built_in():
    registry = default_registry()
    assert {"speak", "transcribe"} <= set(registry.names())
    assert registry.lookup("speak").models({"text": "hi"}) == ["offline/voice"]
    assert registry.lookup("transcribe").models({"audio": "{{ x }}", "model": "{{ m }}"}) is None


def test_a_workflow_speaks_a_text_and_transcribes_it_back(store):
    expected = speech("offline/voice", TEXT, None, "wav", 1.0)  # what the run will say
    clerk = script_transcription("nodes-clerk", {expected: TEXT})
    run = fm_lab.run(_round_trip(clerk), {"text": TEXT}, store=store)
    assert run.status == "succeeded", run.error
    heard = run.node("hear").output
    assert heard["text"] == TEXT and heard["model"] == clerk and heard["language"] == "en"
    said = fm_lab.get_run(run.run_id, store=store).node("say").output
    assert isinstance(said, Audio)  # given back by the store as the player
    assert said.read() == expected and said["model"] == "offline/voice"
    assert "<audio" in said._repr_html_()
    assert heard["seconds"] == pytest.approx(said.seconds)
    kinds = fm_lab.trace(run.run_id, store=store)["kind"].tolist()
    assert kinds == ["workflow", "node", "speech", "node", "transcription"]
    rows = fm_lab.usage(by=["node"], run_id=run.run_id, store=store).set_index("node")
    assert rows.loc["say", "characters"] == len(TEXT) == rows.loc["hear", "characters"]
    assert rows.loc["say", "audio_seconds"] == pytest.approx(said.seconds, abs=1e-3)
    assert rows.loc["hear", "audio_seconds"] == pytest.approx(said.seconds, abs=1e-3)


def test_a_transcript_not_scripted_fails_the_node_clearly(store):
    stranger = script_transcription("nodes-stranger", {})
    run = fm_lab.run(_round_trip(stranger, "offline/tone"), {"text": TEXT}, store=store)
    assert run.status == "failed"
    message = run.node("hear").error["message"]
    assert "no transcript for audio sha256" in message and "\n" not in message


def test_bad_voice_configs_fail_with_one_line(store):
    run = fm_lab.run(Workflow.from_dict({"id": "bad_voice", "nodes": {
        "say": {"type": "speak", "config": {"text": "hi", "model": "offline/tone",
                                            "voice": "baritone"}}}}), {}, store=store)
    assert run.status == "failed"
    error = run.node("say").error
    assert error["message"].startswith("unknown voice 'baritone' for offline/tone; choose")
    assert error["kind"] == "user" and run.node("say").attempts == 1
    with pytest.raises(WorkflowValidationError, match="speed"):
        Workflow.from_dict({"id": "slow", "nodes": {"say": {
            "type": "speak", "config": {"text": "hi", "speed": 9}}}}).validate()
    missing = fm_lab.run(Workflow.from_dict({"id": "no_file", "nodes": {"hear": {
        "type": "transcribe", "config": {"audio": "/nowhere/question.wav"}}}}), {}, store=store)
    assert missing.node("hear").error["message"] == (
        "audio file not found: /nowhere/question.wav")


def test_a_replay_keeps_the_recorded_voice_results(store):
    said = speech("offline/tone", TEXT, None, "wav", 1.0)
    clerk = script_transcription("nodes-replay-clerk", {said: TEXT})
    run = fm_lab.run(_round_trip(clerk, "offline/tone"), {"text": TEXT}, store=store)
    replayed = fm_lab.replay(run.run_id, store=store)
    assert replayed.identical and replayed.run.node("hear").output["text"] == TEXT
    kinds = set(fm_lab.trace(replayed.run.run_id, store=store)["kind"])
    assert not kinds & {"speech", "transcription"}  # no voice call was made again


def test_the_restricted_policy_keeps_voice_files_in_the_audio_folder(store, tmp_path):
    outside = tmp_path / "secret.wav"
    outside.write_bytes(speech("offline/tone", TEXT, None, "wav", 1.0))
    clerk = script_transcription("nodes-restricted", {outside.read_bytes(): TEXT})

    def node(type_name, **config):
        return Workflow.from_dict({"id": f"restricted_{type_name}",
                                   "nodes": {"voice": {"type": type_name, "config": config}}})

    hear = node("transcribe", audio=str(outside), model=clerk)
    say = node("speak", text="hi", model="offline/tone", path=str(tmp_path / "out.wav"))
    refused = fm_lab.run(hear, {}, store=store, policy="restricted").node("voice").error
    assert refused["message"].startswith(
        "the restricted policy lets a workflow read audio files only under ")
    refused = fm_lab.run(say, {}, store=store, policy="restricted").node("voice").error
    assert refused["message"].endswith(f"not {tmp_path / 'out.wav'}")
    assert refused["kind"] == "user" and not (tmp_path / "out.wav").exists()
    run = fm_lab.run(_round_trip(clerk, "offline/tone"), {"text": TEXT}, store=store,
                     policy="restricted")
    assert run.node("hear").output["text"] == TEXT  # what a speak node wrote may be read
    assert fm_lab.run(hear, {}, store=store).node("voice").output["text"] == TEXT  # trusted
    assert fm_lab.run(say, {}, store=store).status == "succeeded"
    assert (tmp_path / "out.wav").exists()
