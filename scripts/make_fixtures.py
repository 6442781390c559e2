#!/usr/bin/env python3
"""Golden fixtures for the Swift tests, computed with PyTorch + transformers.

Run in a virtual environment outside the repository (CI never runs this; the outputs are committed):

    python3 -m venv ~/bertkit-venv
    ~/bertkit-venv/bin/pip install 'torch==2.13.0+cpu' transformers safetensors
    ~/bertkit-venv/bin/python scripts/make_fixtures.py              # all of them
    ~/bertkit-venv/bin/python scripts/make_fixtures.py tiny_pretraining   # only the named ones

Writes into Tests/BertKitTests/Fixtures/:
  tiny-bert/                    a random 2-layer BERT saved by transformers (config.json, model.safetensors), with a
                                97-token character vocabulary so it can tokenize real text
  tiny-classifier.safetensors   BertForSequenceClassification on the tiny BERT: logits, cross-entropy and MSE losses
                                and every gradient
  tiny-classifier-bf16.safetensors  the same classifier with every matrix product (dense layers, attention) on
                                bf16-rounded operands (the toolkit's --precision bf16: rounded to nearest even, sums
                                exact), float64 otherwise: logits, loss and every gradient
  metrics.json                  accuracy, F1, Matthews, Pearson, Spearman from scikit-learn and SciPy on fixed predictions
  tiny-int8.safetensors         tiny_classifier's classification model in float32 with every nn.Linear replaced by the
                                toolkit's int8 arithmetic simulated in PyTorch (weights per output channel, symmetric,
                                limit 127, and 63 for CPUs without VNNI; activations per row, asymmetric u8; exact
                                integer sums): the logits for both limits
  tiny-multilabel.safetensors   BertForSequenceClassification with problem_type multi_label_classification (5 labels,
                                multi-hot targets): logits, BCEWithLogits loss and every gradient
  multilabel-metrics.json       scikit-learn's micro and macro F1, micro precision and recall, per-label F1 and subset
                                accuracy (zero_division=0) on fixed label sets
  tiny-class-weights.safetensors  the classification and token classification heads with class weights:
                                torch.nn.CrossEntropyLoss(weight=...) (ignore_index -100 for tokens), logits, loss and
                                every gradient; and scikit-learn's compute_class_weight("balanced") on fixed labels
  significance.json             scipy.stats.ttest_ind(equal_var=False) (t, df, p, 95 % interval) on fixed samples, and
                                scipy.stats.bootstrap (paired, percentile, 10,000 resamples) on fixed right/wrong answers
  adamw.safetensors             torch.optim.AdamW over a few steps, with and without weight decay
  tiny-token-classifier.safetensors  BertForTokenClassification on the tiny BERT: logits, loss over labelled
                                positions (-100 elsewhere) and every gradient
  seqeval.json                  seqeval's entity-level scores (default, conlleval-compatible mode) on hand-made tags
  tiny-qa.safetensors           BertForQuestionAnswering on the tiny BERT: start/end logits, loss, every gradient
  tiny-pretraining.safetensors  BertForPreTraining on the tiny BERT (random cls.* heads, decoder tied to the word
                                embeddings): masked-LM and NSP logits, the summed loss and every gradient
  squad-metrics.json            SQuAD v1.1's official exact match and F1 on fixed predictions
  squad-v2-metrics.json         SQuAD v2.0's official scores (overall, HasAns, NoAns) on fixed predictions
  tiny-bert-forward.safetensors padded pair inputs, hidden states, pooled output, the loss and every gradient
  tiny-bert-legacy.safetensors  the same weights in bf16, with `bert.` prefixes, LayerNorm gamma/beta, cls.* extras
  dtypes.safetensors            F16/BF16 tensors and their exact float32 values
  minilm-forward.safetensors    all-MiniLM-L6-v2 on real MRPC sentences: inputs and last hidden states
  vocab-uncased.txt             all-MiniLM-L6-v2's vocabulary
  vocab-cased.txt               a cased WordPiece vocabulary trained on the fixture texts
  tokenizer-uncased.jsonl       Hugging Face BertTokenizer (the fast, Rust-backed one) encodings (ids, offsets, word ids) of real texts
  tokenizer-cased.jsonl         the same with the cased vocabulary
  tokenizer-pairs.jsonl         pair encodings with longest-first truncation
"""
import json
import os
import random
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import (BertConfig, BertForPreTraining, BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification,
                          BertModel, BertTokenizer)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "BertKitTests" / "Fixtures"
DATA = Path(os.environ.get("BERTKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
MODEL = Path(os.environ.get("BERTKIT_MODEL", ROOT / "models" / "all-MiniLM-L6-v2"))


def tiny_bert():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        max_position_embeddings=40, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12,
    )
    model = BertModel(config)
    # Random non-trivial LayerNorm parameters and biases, so their gradients are tested on general values.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(OUT / "tiny-bert", safe_serialization=True)
    for extra in ("generation_config.json",):
        (OUT / "tiny-bert" / extra).unlink(missing_ok=True)

    # Padded pairs: [CLS] a.. [SEP] b.. [SEP] [PAD]..; the lengths differ so padding matters.
    lengths = [11, 7, 4]
    seq = max(lengths)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, config.vocab_size, (len(lengths), seq), generator=g)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        a = (n - 1) // 2
        ids[b, 0], ids[b, a], ids[b, n - 1] = 2, 3, 3
        types[b, a + 1:n] = 1
        ids[b, n:] = 0
        mask[b, :n] = 1

    # The reference runs in float64 so the fixture holds the exact answer, not PyTorch's own rounding.
    model = model.double().eval()
    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    hidden, pooled = out.last_hidden_state, out.pooler_output
    # The loss is a fixed random projection of both outputs: every parameter and every position gets a gradient.
    hidden_weight = torch.randn(hidden.shape, generator=g, dtype=torch.float64)
    pooled_weight = torch.randn(pooled.shape, generator=g, dtype=torch.float64)
    loss = (hidden * hidden_weight).sum() + (pooled * pooled_weight).sum()
    loss.backward()

    tensors = {
        "input_ids": ids.to(torch.int64), "token_type_ids": types.to(torch.int64),
        "attention_mask": mask.to(torch.int64),
        "last_hidden_state": hidden.float(), "pooler_output": pooled.float(),
        "loss_weight.last_hidden_state": hidden_weight.float(), "loss_weight.pooler_output": pooled_weight.float(),
        "loss": loss.detach().float().reshape(1),
    }
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.float()
    save_file({k: v.contiguous() for k, v in tensors.items()}, OUT / "tiny-bert-forward.safetensors")

    # An older spelling of the same checkpoint: bf16, `bert.` prefix, gamma/beta, and pre-training heads.
    legacy = {}
    for name, p in model.named_parameters():
        name = "bert." + name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        legacy[name] = p.detach().to(torch.bfloat16)
    legacy["cls.predictions.bias"] = torch.zeros(config.vocab_size, dtype=torch.bfloat16)
    legacy["cls.seq_relationship.weight"] = torch.zeros(2, config.hidden_size, dtype=torch.bfloat16)
    save_file({k: v.contiguous() for k, v in legacy.items()}, OUT / "tiny-bert-legacy.safetensors")


def tiny_vocabulary():
    """Specials at BERT's usual order of ids 0-4, then characters and their continuations: 97 tokens."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(letters) + ["##" + c for c in letters]
    tokens += list("0123456789") + list(".,'\"-()$%&:;!?/")
    tokens += ["##" + d for d in "0123456789"] + list("*+<=>@[]#")
    tokens = tokens[:97]
    assert len(tokens) == 97, len(tokens)
    (OUT / "tiny-bert" / "vocab.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    (OUT / "tiny-bert" / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}) + "\n")


def classifier_inputs():
    """Four padded sentence pairs of lengths 9, 5, 7 and 3 over the tiny vocabulary."""
    g = torch.Generator().manual_seed(3)
    lengths = [9, 5, 7, 3]
    ids = torch.randint(5, 97, (len(lengths), max(lengths)), generator=g)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        ids[b, 0], ids[b, n - 1] = 2, 3
        ids[b, n:] = 0
        types[b, n // 2:n] = 1
        mask[b, :n] = 1
    return ids, types, mask


def tiny_classifier():
    """The sequence classification head on the tiny BERT, in float64, with dropout off (evaluation mode)."""
    golden = {}
    ids, types, mask = classifier_inputs()
    golden.update({"input_ids": ids, "token_type_ids": types, "attention_mask": mask})
    for kind, num_labels in (("classification", 3), ("regression", 1)):
        torch.manual_seed(5)
        model = BertForSequenceClassification.from_pretrained(
            OUT / "tiny-bert", num_labels=num_labels,
            problem_type="single_label_classification" if num_labels > 1 else "regression").double().eval()
        labels = torch.tensor([0, 2, 1, 2]) if num_labels > 1 else torch.tensor([0.5, -1.25, 3.0, 1.75], dtype=torch.float64)
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
        out.loss.backward()
        golden[f"{kind}.labels"] = labels.double().float() if num_labels == 1 else labels
        golden[f"{kind}.logits"] = out.logits.detach().float()
        golden[f"{kind}.loss"] = out.loss.detach().float().reshape(1)
        for name, p in model.named_parameters():
            golden[f"{kind}.weight.{name}"] = p.detach().float()
            golden[f"{kind}.grad.{name}"] = p.grad.float()
    save_file({k: v.contiguous() for k, v in golden.items()}, OUT / "tiny-classifier.safetensors")


def int8_linear(limit):
    """nn.Linear's forward with dynamic int8 quantisation as the toolkit does it (Int8Gemm), in float32 like it."""
    def forward(self, x):
        w = self.weight
        largest = w.abs().amax(dim=1)
        sw = torch.where(largest > 0, largest / limit, torch.ones_like(largest))
        qw = torch.clamp(torch.round(w / sw[:, None]), -limit, limit)
        rows = x.reshape(-1, x.shape[-1])
        low, high = rows.amin(dim=1).clamp(max=0), rows.amax(dim=1).clamp(min=0)
        sx = torch.where(high > low, (high - low) / 255, torch.ones_like(high))
        zx = torch.clamp(torch.round(-low / sx), 0, 255)
        qx = torch.clamp(torch.round(rows / sx[:, None]) + zx[:, None], 0, 255)
        sums = (qx - zx[:, None]).double() @ qw.double().T  # exact: integers far below 2^53
        y = (sx[:, None] * sw[None, :]) * sums.float() + self.bias
        return y.reshape(*x.shape[:-1], w.shape[0])
    return forward


def tiny_int8():
    ids, types, mask = classifier_inputs()
    golden = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    for limit in (127, 63):
        torch.manual_seed(5)
        model = BertForSequenceClassification.from_pretrained(OUT / "tiny-bert", num_labels=3).eval()
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.forward = int8_linear(limit).__get__(module)
        with torch.no_grad():
            golden[f"logits.{limit}"] = model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    save_file({k: v.contiguous() for k, v in golden.items()}, OUT / "tiny-int8.safetensors")


def tiny_multilabel():
    """The multi-label head: one sigmoid output per label, binary cross-entropy over every label, float64."""
    ids, types, mask = classifier_inputs()
    torch.manual_seed(5)
    model = BertForSequenceClassification.from_pretrained(
        OUT / "tiny-bert", num_labels=5, problem_type="multi_label_classification").double().eval()
    labels = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 1]], dtype=torch.float64)
    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    out.loss.backward()
    golden = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "labels": labels.float(),
              "logits": out.logits.detach().float(), "loss": out.loss.detach().float().reshape(1)}
    for name, p in model.named_parameters():
        golden[f"weight.{name}"] = p.detach().float()
        golden[f"grad.{name}"] = p.grad.float()
    save_file({k: v.contiguous() for k, v in golden.items()}, OUT / "tiny-multilabel.safetensors")


def multilabel_metrics():
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
    rng = random.Random(11)
    cases = []
    for n, labels in ((40, 6), (200, 28), (9, 4)):
        gold = [sorted({rng.randrange(labels) for _ in range(rng.choice([0, 1, 1, 2, 3]))}) for _ in range(n)]
        predicted = [sorted({l for l in g if rng.random() < 0.7} | {rng.randrange(labels) for _ in range(rng.choice([0, 0, 1]))})
                     for g in gold]
        y, p = np.zeros((n, labels), dtype=int), np.zeros((n, labels), dtype=int)
        for i, (g, q) in enumerate(zip(gold, predicted)):
            y[i, g], p[i, q] = 1, 1
        cases.append({"labels": labels, "gold": gold, "predicted": predicted,
                      "micro_f1": f1_score(y, p, average="micro", zero_division=0),
                      "macro_f1": f1_score(y, p, average="macro", zero_division=0),
                      "micro_precision": precision_score(y, p, average="micro", zero_division=0),
                      "micro_recall": recall_score(y, p, average="micro", zero_division=0),
                      "per_label_f1": f1_score(y, p, average=None, zero_division=0).tolist(),
                      "subset_accuracy": accuracy_score(y, p)})
    (OUT / "multilabel-metrics.json").write_text(json.dumps(cases, indent=1) + "\n")


def to_bf16(t):
    """Rounds to the nearest bfloat16 (ties to even) through float32, as the toolkit rounds its fp32 values."""
    return t.float().bfloat16().double()


class BF16MatMul(torch.autograd.Function):
    """alpha · r(a) @ r(b), r rounding to bf16, with the toolkit's backward: each gradient product rounds its
    operands too (da = alpha · r(g) @ r(b)ᵀ, db = alpha · r(a)ᵀ @ r(g)); sums stay exact."""

    @staticmethod
    def forward(ctx, a, b, alpha):
        ctx.save_for_backward(a, b)
        ctx.alpha = alpha
        return alpha * (to_bf16(a) @ to_bf16(b))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        da = ctx.alpha * (to_bf16(g) @ to_bf16(b).transpose(-1, -2))
        db = ctx.alpha * (to_bf16(a).transpose(-1, -2) @ to_bf16(g))
        if db.dim() > b.dim():  # a Linear's weight is shared by every row of a batched input
            db = db.sum(dim=tuple(range(db.dim() - b.dim())))
        return da, db, None


def bf16_linear(module, x):
    """nn.Linear through BF16MatMul: y = r(x)·r(W)ᵀ + b, dX = r(dY)·r(W), dW = r(dY)ᵀ·r(x)."""
    return BF16MatMul.apply(x, module.weight.T, 1.0) + module.bias


def bf16_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' eager attention with both products through BF16MatMul; softmax stays exact."""
    scores = BF16MatMul.apply(query, key.transpose(2, 3), scaling if scaling is not None else query.size(-1) ** -0.5)
    if attention_mask is not None:
        scores = scores + attention_mask
    probabilities = torch.nn.functional.softmax(scores, dim=-1)
    return BF16MatMul.apply(probabilities, value, 1.0).transpose(1, 2).contiguous(), probabilities


def tiny_classifier_bf16():
    """tiny_classifier's classification case with every matrix product reading bf16-rounded operands."""
    from transformers.models.bert import modeling_bert
    # BERT's eager attention, which receives the additive padding mask, with its products rounded.
    modeling_bert.eager_attention_forward = bf16_attention
    golden = {}
    ids, types, mask = classifier_inputs()
    golden.update({"input_ids": ids, "token_type_ids": types, "attention_mask": mask})
    torch.manual_seed(5)
    model = BertForSequenceClassification.from_pretrained(
        OUT / "tiny-bert", num_labels=3, problem_type="single_label_classification",
        attn_implementation="eager").double().eval()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.forward = lambda x, m=module: bf16_linear(m, x)
    labels = torch.tensor([0, 2, 1, 2])
    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    out.loss.backward()
    golden["labels"] = labels
    golden["logits"] = out.logits.detach().float()
    golden["loss"] = out.loss.detach().float().reshape(1)
    for name, p in model.named_parameters():
        golden[f"weight.{name}"] = p.detach().float()
        golden[f"grad.{name}"] = p.grad.float()
    save_file({k: v.contiguous() for k, v in golden.items()}, OUT / "tiny-classifier-bf16.safetensors")


def metrics():
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
    rng = random.Random(7)
    cases = []
    for n, classes in ((50, 2), (200, 2), (37, 3), (12, 2)):
        gold = [rng.randrange(classes) for _ in range(n)]
        predicted = [g if rng.random() < 0.7 else rng.randrange(classes) for g in gold]
        case = {"gold": gold, "predicted": predicted, "accuracy": accuracy_score(gold, predicted),
                "matthews": matthews_corrcoef(gold, predicted)}
        if classes == 2:
            case["f1"] = f1_score(gold, predicted)
        cases.append(case)
    cases.append({"gold": [0, 1, 0, 1], "predicted": [0, 0, 0, 0], "accuracy": 0.5, "f1": f1_score([0, 1, 0, 1], [0, 0, 0, 0], zero_division=0),
                  "matthews": matthews_corrcoef([0, 1, 0, 1], [0, 0, 0, 0])})
    correlations = []
    for n in (30, 200):
        x = [round(rng.uniform(0, 5), 1) for _ in range(n)]  # rounded: ties, as in STS-B's scores
        y = [v + rng.gauss(0, 1) for v in x]
        correlations.append({"x": x, "y": y, "pearson": float(pearsonr(x, y)[0]), "spearman": float(spearmanr(x, y)[0])})
    (OUT / "metrics.json").write_text(json.dumps({"classification": cases, "correlation": correlations}, indent=1) + "\n")


def adamw():
    torch.manual_seed(11)
    tensors = {}
    for decay in (0.0, 0.01):
        p = torch.nn.Parameter(torch.randn(40))
        tensors[f"decay{decay}.initial"] = p.detach().clone()
        opt = torch.optim.AdamW([p], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=decay)
        for step in range(5):
            grad = torch.randn(40)
            tensors[f"decay{decay}.grad{step}"] = grad.clone()
            p.grad = grad
            opt.step()
            tensors[f"decay{decay}.after{step}"] = p.detach().clone()
    save_file({k: v.contiguous() for k, v in tensors.items()}, OUT / "adamw.safetensors")


def labelled_tokens(seed):
    """Three `[CLS] ... [SEP]` sequences of 10, 6 and 8 random tokens, right-padded, with labels among 5 on most
    tokens and -100 elsewhere."""
    g = torch.Generator().manual_seed(seed)
    lengths = [10, 6, 8]
    ids = torch.randint(5, 97, (len(lengths), max(lengths)), generator=g)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for b, n in enumerate(lengths):
        ids[b, 0], ids[b, n - 1] = 2, 3
        ids[b, n:] = 0
        mask[b, :n] = 1
        for t in range(1, n - 1):
            if t % 3 != 2:  # some sub-tokens carry no label, as later pieces of a word do
                labels[b, t] = int(torch.randint(0, 5, (1,), generator=g))
    return ids, mask, labels


def tiny_token_classifier():
    torch.manual_seed(13)
    ids, mask, labels = labelled_tokens(17)
    model = BertForTokenClassification.from_pretrained(OUT / "tiny-bert", num_labels=5).double().eval()
    types = torch.zeros_like(ids)
    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    out.loss.backward()
    golden = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "labels": labels,
              "logits": out.logits.detach().float(), "loss": out.loss.detach().float().reshape(1)}
    for name, p in model.named_parameters():
        golden["weight." + name] = p.detach().float()
        golden["grad." + name] = p.grad.float()
    save_file({k: v.contiguous() for k, v in golden.items()}, OUT / "tiny-token-classifier.safetensors")


def tiny_class_weights():
    """Weighted cross-entropy, as PyTorch defines it: sum of w[y]·loss over sum of w[y], in float64."""
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight
    golden = {}
    ids, types, mask = classifier_inputs()
    golden.update({"sequence.input_ids": ids, "sequence.token_type_ids": types, "sequence.attention_mask": mask})
    torch.manual_seed(5)
    model = BertForSequenceClassification.from_pretrained(OUT / "tiny-bert", num_labels=3).double().eval()
    weights = torch.tensor([0.5, 2.0, 1.25], dtype=torch.float64)
    labels = torch.tensor([0, 2, 1, 2])
    logits = model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    loss = torch.nn.CrossEntropyLoss(weight=weights)(logits, labels)
    loss.backward()
    golden.update({"sequence.labels": labels, "sequence.class_weights": weights.float(), "sequence.logits": logits.detach().float(),
                   "sequence.loss": loss.detach().float().reshape(1)})
    for name, p in model.named_parameters():
        golden["sequence.weight." + name] = p.detach().float()
        golden["sequence.grad." + name] = p.grad.float()

    torch.manual_seed(13)
    ids, mask, labels = labelled_tokens(19)
    model = BertForTokenClassification.from_pretrained(OUT / "tiny-bert", num_labels=5).double().eval()
    weights = torch.tensor([0.25, 3.0, 0.5, 2.0, 1.0], dtype=torch.float64)
    types = torch.zeros_like(ids)
    logits = model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    loss = torch.nn.CrossEntropyLoss(weight=weights, ignore_index=-100)(logits.reshape(-1, 5), labels.reshape(-1))
    loss.backward()
    golden.update({"token.input_ids": ids, "token.token_type_ids": types, "token.attention_mask": mask, "token.labels": labels,
                   "token.class_weights": weights.float(), "token.logits": logits.detach().float(),
                   "token.loss": loss.detach().float().reshape(1)})
    for name, p in model.named_parameters():
        golden["token.weight." + name] = p.detach().float()
        golden["token.grad." + name] = p.grad.float()

    y = [0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 3, 3, 3, 0, 1]
    golden["balanced.labels"] = torch.tensor(y)
    golden["balanced.weights"] = torch.tensor(compute_class_weight("balanced", classes=np.arange(4), y=np.array(y))).float()
    save_file({k: v.contiguous() for k, v in golden.items()}, OUT / "tiny-class-weights.safetensors")


def significance():
    import numpy as np
    from scipy import stats
    cases = [
        ([0.861, 0.853, 0.868], [0.842, 0.850, 0.839]),
        ([0.80, 0.81, 0.79, 0.82, 0.80], [0.78, 0.83]),
        ([84.1, 85.0, 83.2, 84.8], [84.0, 84.9, 83.5, 85.2]),
        ([0.5, 0.52], [0.1, 0.9, 0.4]),
    ]
    welch = []
    for a, b in cases:
        r = stats.ttest_ind(a, b, equal_var=False)
        ci = r.confidence_interval(0.95)
        welch.append({"a": a, "b": b, "t": float(r.statistic), "df": float(r.df), "p": float(r.pvalue),
                      "lower": float(ci.low), "upper": float(ci.high)})
    rng = np.random.default_rng(7)
    gold = rng.integers(0, 2, 300)
    first = np.where(rng.random(300) < 0.86, gold, 1 - gold)
    second = np.where(rng.random(300) < 0.82, gold, 1 - gold)
    right = (first == gold).astype(float), (second == gold).astype(float)
    boot = stats.bootstrap(right, lambda x, y: np.mean(x) - np.mean(y), paired=True, vectorized=False, n_resamples=10000,
                           method="percentile", random_state=0)
    bootstrap = {"gold": gold.tolist(), "first": first.tolist(), "second": second.tolist(),
                 "difference": float(right[0].mean() - right[1].mean()),
                 "lower": float(boot.confidence_interval.low), "upper": float(boot.confidence_interval.high),
                 "standard_error": float(boot.standard_error)}
    (OUT / "significance.json").write_text(json.dumps({"welch": welch, "bootstrap": bootstrap}, indent=1) + "\n")


def seqeval_cases():
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
    cases = [
        # Well-formed IOB2.
        ([["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "I-ORG"]],
         [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O"]]),
        # Ill-formed I- starts (an I- after O, or after another type) begin entities, as in conlleval.
        ([["O", "I-PER", "I-PER", "O", "B-MISC", "I-MISC"], ["B-LOC", "I-ORG", "O"]],
         [["O", "I-PER", "I-PER", "O", "I-MISC", "I-MISC"], ["B-LOC", "B-ORG", "O"]]),
        # Wrong type, wrong boundary, spurious and missed entities.
        ([["B-PER", "I-PER", "I-PER", "O", "B-ORG", "O", "O"], ["B-LOC", "O", "B-MISC", "I-MISC"]],
         [["B-ORG", "I-ORG", "I-ORG", "O", "B-ORG", "I-ORG", "O"], ["O", "O", "B-MISC", "B-MISC"]]),
        # Entities at sentence ends and adjacent same-type entities.
        ([["B-PER", "B-PER", "I-PER"], ["I-LOC"], ["O", "O"]],
         [["B-PER", "I-PER", "I-PER"], ["I-LOC"], ["B-PER", "O"]]),
    ]
    out = []
    for gold, predicted in cases:
        report = classification_report(gold, predicted, output_dict=True, zero_division=0)
        out.append({"gold": gold, "predicted": predicted,
                     "f1": f1_score(gold, predicted, zero_division=0), "precision": precision_score(gold, predicted, zero_division=0),
                     "recall": recall_score(gold, predicted, zero_division=0), "accuracy": accuracy_score(gold, predicted),
                     "per_type_f1": {k: v["f1-score"] for k, v in report.items() if not k.endswith("avg")}})
    (OUT / "seqeval.json").write_text(json.dumps(out, indent=1) + "\n")


def padded_pairs(g):
    """Three `[CLS] A [SEP] B [SEP]` pairs of 12, 9 and 11 random tokens of the tiny vocabulary, right-padded."""
    lengths = [12, 9, 11]
    ids = torch.randint(5, 97, (len(lengths), max(lengths)), generator=g)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        ids[b, 0], ids[b, 4], ids[b, n - 1] = 2, 3, 3
        ids[b, n:] = 0
        types[b, 5:n] = 1
        mask[b, :n] = 1
    return ids, types, mask


def tiny_qa():
    torch.manual_seed(19)
    g = torch.Generator().manual_seed(23)
    ids, types, mask = padded_pairs(g)
    starts, ends = torch.tensor([6, 0, 7]), torch.tensor([8, 0, 9])
    model = BertForQuestionAnswering.from_pretrained(OUT / "tiny-bert").double().eval()
    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, start_positions=starts, end_positions=ends)
    out.loss.backward()
    golden = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "start_positions": starts,
              "end_positions": ends, "start_logits": out.start_logits.detach().float(),
              "end_logits": out.end_logits.detach().float(), "loss": out.loss.detach().float().reshape(1)}
    for name, p in model.named_parameters():
        golden["weight." + name] = p.detach().float()
        golden["grad." + name] = p.grad.float()
    save_file({k: v.contiguous() for k, v in golden.items()}, OUT / "tiny-qa.safetensors")


def tiny_pretraining():
    """BertForPreTraining on the tiny BERT in float64, dropout off: masked-LM labels at a few positions (-100
    elsewhere) and next-sentence labels; the heads are new, so they get random (and non-trivial) values."""
    torch.manual_seed(29)
    g = torch.Generator().manual_seed(31)
    ids, types, mask = padded_pairs(g)
    labels = torch.full_like(ids, -100)
    for b, t in [(0, 1), (0, 3), (0, 7), (1, 2), (1, 6), (2, 5), (2, 8), (2, 9)]:
        labels[b, t] = ids[b, t]
        ids[b, t] = 4 if t % 2 else int(torch.randint(5, 97, (1,), generator=g))  # [MASK] or a random token
    next_sentence = torch.tensor([0, 1, 1])
    model = BertForPreTraining.from_pretrained(OUT / "tiny-bert").double().eval()
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight, "decoder not tied"
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("cls.") and (name.endswith("bias") or "LayerNorm" in name):
                p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels,
                next_sentence_label=next_sentence)
    out.loss.backward()
    positions = (labels != -100).flatten().nonzero().flatten()
    golden = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "masked_positions": positions,
              "masked_tokens": labels.flatten()[positions], "next_sentence_label": next_sentence,
              "mlm_logits": out.prediction_logits.detach().reshape(-1, 97)[positions].float(),
              "nsp_logits": out.seq_relationship_logits.detach().float(), "loss": out.loss.detach().float().reshape(1)}
    for name, p in model.named_parameters():
        golden["weight." + name] = p.detach().float()
        golden["grad." + name] = p.grad.float()
    save_file({k: v.contiguous() for k, v in golden.items()}, OUT / "tiny-pretraining.safetensors")


def squad_official_metrics():
    """SQuAD v1.1's evaluate-v1.1.py algorithm (scripts/reference_common.py), applied to fixed predictions."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reference_common import squad_f1 as f1_score, squad_normalize as normalize_answer

    cases = [
        ("Denver Broncos", ["Denver Broncos", "The Denver Broncos"]),
        ("the Denver Broncos!", ["Denver Broncos"]),
        ("Broncos", ["Denver Broncos"]),
        ("an apple a day", ["The apple, a day."]),
        ("theater and anthem", ["the theater and an anthem"]),
        ("Café Société", ["café société"]),
        ("ÉCOLE NORMALE", ["École normale supérieure"]),
        ("Straße", ["STRASSE"]),
        ("1,000,000 dollars", ["1000000 dollars", "$1,000,000"]),
        ("«quoted» — text", ["quoted text"]),
        ("the the the", ["the"]),
        ("", ["something"]),
        ("a", ["a"]),
        ("Sonny & Cher", ["Sonny and Cher"]),
        ("U.S.", ["US", "United States"]),
        ("naïve  résumé", ["naive resume", "naïve résumé"]),
        ("über-cool", ["uber cool", "über cool"]),
        ("Nikola Tesla's", ["Tesla"]),
        ("\u00a0spaced\u2003out\u3000", ["spaced out"]),
        ("Ⅻ chapters", ["Ⅻ chapters"]),
        ("A.D. 1066", ["1066"]),
        ("thé an", ["thé"]),
    ]
    out = []
    for prediction, golds in cases:
        out.append({"prediction": prediction, "golds": golds, "normalized": normalize_answer(prediction),
                    "exact_match": max(float(normalize_answer(prediction) == normalize_answer(g)) for g in golds),
                    "f1": max(f1_score(prediction, g) for g in golds)})
    (OUT / "squad-metrics.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def squad_v2_official_metrics():
    """SQuAD v2.0's evaluate-v2.0.py algorithm (scripts/reference_common.py) on fixed predictions, answerable and
    unanswerable questions mixed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reference_common import squad_v2_evaluate

    cases = [
        ("q1", ["Denver Broncos", "The Denver Broncos"], "the Denver Broncos!"),
        ("q2", ["Denver Broncos"], "Broncos"),
        ("q3", [], ""),                      # unanswerable, abstained
        ("q4", [], "Carolina Panthers"),     # unanswerable, answered
        ("q5", ["Carolina Panthers"], ""),   # answerable, abstained
        ("q6", ["the", "an"], ""),           # golds that normalise to nothing count as ""
        ("q7", ["the", "Panthers"], "a"),    # "the" is dropped as a gold; "a" normalises to nothing and scores 0
        ("q8", ["Café Société"], "café société"),
        ("q9", [], "the"),                   # unanswerable, a prediction that normalises to nothing
        ("q10", ["1,000,000 dollars"], "1000000 dollars"),
    ]
    examples = [{"id": i, "answers": [{"text": g} for g in golds]} for i, golds, _ in cases]
    predictions = {i: p for i, _, p in cases if i != "q10"}  # q10 has no prediction: v2 leaves it out
    per_question = {i: squad_v2_evaluate([e], predictions) for i, e in zip([c[0] for c in cases], examples)}
    out = {"cases": [{"id": i, "golds": g, "prediction": p} for i, g, p in cases], "predictions": predictions,
           "per_question": per_question, "totals": squad_v2_evaluate(examples, predictions)}
    (OUT / "squad-v2-metrics.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def dtypes():
    values = torch.tensor([0.0, -0.0, 1.0, -2.5, 3.14159, 65504.0, 1e-3, 6e-8, 1e-6, -7.25e4, 1e30, 3.3e-39],
                          dtype=torch.float32)
    f16 = values.to(torch.float16)
    bf16 = values.to(torch.bfloat16)
    save_file({"f16": f16, "f16_as_f32": f16.float(), "bf16": bf16, "bf16_as_f32": bf16.float(),
               "f32": values}, OUT / "dtypes.safetensors")


def read_tsv(path, column):
    rows = path.read_text(encoding="utf-8-sig").split("\n")[1:]
    return [r.split("\t")[column] for r in rows if r.count("\t") >= column]


def conll_sentences(path):
    sentences, words = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            if words:
                sentences.append(" ".join(words))
            words = []
        elif not line.startswith("-DOCSTART-"):
            words.append(line.split(" ")[0])
    return sentences


def squad_texts(path):
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    contexts, questions = [], []
    for article in data:
        for paragraph in article["paragraphs"]:
            contexts.append(paragraph["context"])
            questions.extend(q["question"] for q in paragraph["qas"])
    return contexts, questions


HARD_CASES = [
    "", " ", "   \t\n ", "a", "[CLS]", "[UNK] [SEP]", "hello [MASK] world",
    "Café naïve résumé façade coöperate", "ÅNGSTRÖM ÉCOLE Ñandú", "e\u0301 a\u0300 o\u0308",
    "我爱北京天安门", "日本語のテキストです。", "한국어 텍스트", "中文English混合mixed",
    "I love 🤗 and 👍🏽 and 👨‍👩‍👧", "emoji🙂glued", "\u0000abc\u0007def\u200bghi", "tab\tnew\nline\rreturn",
    "soft\u00adhyphen", "no\u00a0break\u2028space\u3000ideographic", "\ufeffbom", "repl\ufffdacement",
    "private\ue000use", "tag\U000E0041char", "a" * 100, "b" * 101, "supercalifragilisticexpialidocious" * 4,
    "Hello,world!... (really?) [yes] {no} <maybe>", "$100 + 5% = ~20^2 | a_b `c` @d #e &f *g",
    "Σίσυφος ΟΔΥΣΣΕΥΣ", "İstanbul ıi", "Straße STRASSE", "ﬁnance ﬂow", "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ",
    "مرحبا بالعالم", "שלום עולם", "ภาษาไทย", "नमस्ते दुनिया", "don't won't y'all", "U.S.A. e.g. i.e.",
    "3.14 1,000,000 -42 +7", "https://example.com/a?b=c&d=e#f", "user@example.com", "C++ C# F#",
    "—–‐ “quoted” ‘single’ «guillemets» „low“", "…‥", "x²+y³=z⁴", "½ ¼ ¾", "№ ℃ ™ ©",
    "\u0301leading combining mark", "trailing combining\u0301", "ǅungla ǈ", "ÆØÅ æøå", "Đ đ Ł ł",
    "A\u0000B\u0001C", "zero\u200dwidth\u200cjoiners", "mixed 中 chars 字 between", "unaffable runner-up",
]


def tokenizer_fixtures():
    mrpc = read_tsv(DATA / "glue" / "MRPC" / "dev.tsv", 3) + read_tsv(DATA / "glue" / "MRPC" / "dev.tsv", 4)
    sst2 = read_tsv(DATA / "glue" / "SST-2" / "dev.tsv", 0)
    conll = conll_sentences(DATA / "conll2003" / "valid.txt")
    contexts, questions = squad_texts(DATA / "squad" / "dev-v1.1.json")
    rng = random.Random(0)
    texts = (rng.sample(mrpc, 500) + rng.sample(sst2, 450) + rng.sample(conll, 500)
             + rng.sample(contexts, 250) + rng.sample(questions, 350))
    texts += HARD_CASES

    (OUT / "vocab-uncased.txt").write_bytes((MODEL / "vocab.txt").read_bytes())
    # transformers 5's BertTokenizer is the fast, Rust-backed tokenizer (formerly BertTokenizerFast).
    uncased = BertTokenizer.from_pretrained(str(MODEL))

    # The WordPiece trainer breaks ties differently from run to run, so an existing vocabulary is kept.
    if not (OUT / "vocab-cased.txt").exists():
        from tokenizers import BertWordPieceTokenizer
        trainer = BertWordPieceTokenizer(lowercase=False, strip_accents=False, clean_text=True,
                                         handle_chinese_chars=True)
        trainer.train_from_iterator(texts, vocab_size=4000, min_frequency=2, limit_alphabet=400)
        ordered = sorted(trainer.get_vocab().items(), key=lambda kv: kv[1])
        (OUT / "vocab-cased.txt").write_text("".join(token + "\n" for token, _ in ordered), encoding="utf-8")
    tokens = (OUT / "vocab-cased.txt").read_text(encoding="utf-8").split("\n")[:-1]
    vocab = [(token, i) for i, token in enumerate(tokens)]
    cased = BertTokenizer(vocab={token: i for token, i in vocab}, do_lower_case=False)

    def encode_all(tokenizer, items, path):
        with open(path, "w", encoding="utf-8") as f:
            for text in items:
                e = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
                f.write(json.dumps({
                    "text": text, "ids": e["input_ids"], "offsets": e["offset_mapping"], "words": e.word_ids(),
                }, ensure_ascii=False) + "\n")

    encode_all(uncased, texts, OUT / "tokenizer-uncased.jsonl")
    encode_all(cased, texts[:600] + rng.sample(texts[600:], 400) + HARD_CASES, OUT / "tokenizer-cased.jsonl")

    # Pairs (MRPC-like, and question/context) truncated longest-first to lengths that cut one or both sides.
    pairs = list(zip(read_tsv(DATA / "glue" / "MRPC" / "dev.tsv", 3), read_tsv(DATA / "glue" / "MRPC" / "dev.tsv", 4)))
    pairs = rng.sample(pairs, 150) + [(q, c) for q, c in zip(rng.sample(questions, 50), rng.sample(contexts, 50))]
    pairs += [("", "only b"), ("only a", ""), ("", ""), ("short", "a much longer second segment than the first")]
    with open(OUT / "tokenizer-pairs.jsonl", "w", encoding="utf-8") as f:
        for i, (a, b) in enumerate(pairs):
            max_length = [8, 9, 16, 17, 32, 64, 128][i % 7]
            e = uncased(a, b, truncation="longest_first", max_length=max_length, return_offsets_mapping=True,
                        return_token_type_ids=True)
            f.write(json.dumps({
                "text": a, "pair": b, "max_length": max_length, "ids": e["input_ids"],
                "type_ids": e["token_type_ids"], "offsets": e["offset_mapping"], "words": e.word_ids(),
            }, ensure_ascii=False) + "\n")


def minilm():
    tokenizer = BertTokenizer.from_pretrained(str(MODEL))
    model = BertModel.from_pretrained(str(MODEL)).eval()
    rows = [r.split("\t") for r in (DATA / "glue" / "MRPC" / "dev.tsv").read_text(encoding="utf-8-sig").split("\n")[1:6]]
    singles = [rows[0][3], rows[1][4], "The quick brown fox jumps over the lazy dog."]
    pairs = [(rows[2][3], rows[2][4]), (rows[3][3], rows[3][4]), (rows[4][3], rows[4][4])]
    first = singles + [a for a, _ in pairs]
    second = [None] * len(singles) + [b for _, b in pairs]
    encodings = [tokenizer(a, b) if b is not None else tokenizer(a) for a, b in zip(first, second)]
    seq = max(len(e["input_ids"]) for e in encodings)
    ids = torch.zeros(len(encodings), seq, dtype=torch.int64)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(encodings):
        n = len(e["input_ids"])
        ids[i, :n] = torch.tensor(e["input_ids"])
        types[i, :n] = torch.tensor(e["token_type_ids"])
        mask[i, :n] = 1
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    save_file({"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
               "last_hidden_state": out.last_hidden_state.contiguous(), "pooler_output": out.pooler_output.contiguous()},
              OUT / "minilm-forward.safetensors")
    (OUT / "minilm-texts.json").write_text(json.dumps({"first": first, "second": second}, ensure_ascii=False, indent=1) + "\n",
                                            encoding="utf-8")


if __name__ == "__main__":
    if not (MODEL / "model.safetensors").exists():
        sys.exit(f"{MODEL}/model.safetensors not found: run scripts/setup first")
    OUT.mkdir(parents=True, exist_ok=True)
    everything = [tiny_bert, tiny_vocabulary, tiny_classifier, tiny_classifier_bf16, tiny_int8, metrics, tiny_multilabel, multilabel_metrics, adamw, tiny_token_classifier, tiny_class_weights, significance, seqeval_cases,
                  tiny_qa, tiny_pretraining, squad_official_metrics, squad_v2_official_metrics, dtypes, tokenizer_fixtures, minilm]
    chosen = {f.__name__: f for f in everything}
    unknown = set(sys.argv[1:]) - set(chosen)
    if unknown:
        sys.exit(f"unknown fixture(s) {sorted(unknown)}; known: {sorted(chosen)}")
    for make in everything:
        if not sys.argv[1:] or make.__name__ in sys.argv[1:]:
            make()
    print("fixtures written to", OUT)
