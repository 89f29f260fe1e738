"""The weak annotator as an object: tokenization of pairs, per-sequence scores, margins.

Every objective turns a pair (x, y_a, y_b) into two token sequences and a per-sequence score g;
the margin is Δ = g(seq_a) − g(seq_b) (Δ > 0: y_a preferred), divided by the calibration
temperature T (1 unless fitted):

* ``bt``: seq = x + y (raw text; with ``separator``, x [SEP] y: the tokens the tokenizer puts
  between the two texts of a pair), g = scalar head r(x, y) on the pooled sequence: ``mean`` pooling
  (the masked mean of the last hidden states; what sentence-transformers backbones such as
  MiniLM-L6 were trained for) or ``cls`` (the model's own sequence-classification path: BERT's
  pooler over [CLS], the last token for causal LMs). The annotator folder records which.
* ``pairrm``: seq_a = joint(x, y_a, y_b), seq_b = joint(x, y_b, y_a), g = f(joint).
* ``dpo`` (WS-DPO): seq = x + y, g = β·[log π_w(y|x) − log π_ref(y|x)] (implicit reward).

Too-long sequences lose prompt tokens from the left first (the end of a dialogue matters most),
then response tokens from the right; ``encode_pairs`` reports which pairs were cut so a caller
can drop them instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cwpo.errors import ConfigError, ModelNotFoundError
from cwpo.io import read_json

OBJECTIVES = ("bt", "pairrm", "dpo")
POOLINGS = ("mean", "cls")
ANNOTATOR_FILE = "annotator.json"
REFERENCE_DIR = "reference"
PAIRRM_MARKERS = ("\n\nResponse A:", "\n\nResponse B:")


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single text (e.g. [CLS] ... [SEP])."""
    plain = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x", add_special_tokens=True)["input_ids"]
    k = _find(full, plain)
    return ([], []) if k < 0 else (list(full[:k]), list(full[k + len(plain) :]))


def _find(seq: list[int], sub: list[int], start: int = 0) -> int:
    """First index ≥ ``start`` where ``sub`` occurs in ``seq``, or -1."""
    for k in range(start, len(seq) - len(sub) + 1):
        if seq[k : k + len(sub)] == sub:
            return k
    return -1


def pair_separator(tokenizer) -> list[int]:
    """The ids the tokenizer puts between the two texts of a pair (BERT: [SEP]; none for most LMs)."""
    x = tokenizer("x", add_special_tokens=False)["input_ids"]
    y = tokenizer("y", add_special_tokens=False)["input_ids"]
    pair = tokenizer("x", "y", add_special_tokens=True)["input_ids"]
    i = _find(pair, x)
    j = _find(pair, y, i + len(x)) if i >= 0 else -1
    return list(pair[i + len(x) : j]) if j >= 0 else []


def _ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


@dataclass
class EncodedPairs:
    """Two token sequences per pair (a-side, b-side), the response start of each, cut flags."""

    seq_a: list[list[int]]
    seq_b: list[list[int]]
    start_a: list[int]
    start_b: list[int]
    truncated: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seq_a)


def _fit(p: list[int], r: list[int], budget: int) -> tuple[list[int], list[int], bool]:
    """Cut the response (right) only if it alone exceeds the budget, then the prompt (left)."""
    if len(p) + len(r) <= budget:
        return p, r, False
    r = r[: max(1, budget - 1)]
    keep = max(0, budget - len(r))
    return (p[len(p) - keep :] if keep else []), r, True


def encode_pairs(
    tokenizer, objective: str, prompts, responses_a, responses_b, max_length: int, separator: bool = False
) -> EncodedPairs:
    """Tokenize pairs for ``objective`` (prompt and responses tokenized separately, in batch).

    ``separator`` (bt only): put the tokenizer's pair separator between prompt and response.
    """
    n = len(prompts)
    if not (len(responses_a) == len(responses_b) == n):
        raise ValueError(f"{n} prompts, {len(responses_a)} responses a, {len(responses_b)} responses b")
    pre, post = special_tokens(tokenizer)
    if separator and objective != "bt":
        raise ConfigError(f"separator applies to the bt objective only, not {objective!r}")
    sep = pair_separator(tokenizer) if separator else []
    budget = max_length - len(pre) - len(post) - len(sep)
    if budget < 2:
        raise ConfigError(f"max_length {max_length} leaves no room for text after the special tokens")
    P, A, B = _ids(tokenizer, prompts), _ids(tokenizer, responses_a), _ids(tokenizer, responses_b)
    out = EncodedPairs([], [], [], [])
    if objective in ("bt", "dpo"):
        if objective == "dpo":
            bos = tokenizer.bos_token_id
            if bos is not None and getattr(tokenizer, "add_bos_token", False):
                P = [[bos, *p] for p in P]
        for p, a, b in zip(P, A, B, strict=True):
            pa, a2, cut_a = _fit(p, a, budget)
            pb, b2, cut_b = _fit(p, b, budget)
            out.seq_a.append(pre + pa + sep + a2 + post)
            out.seq_b.append(pre + pb + sep + b2 + post)
            out.start_a.append(len(pre) + len(pa) + len(sep))
            out.start_b.append(len(pre) + len(pb) + len(sep))
            out.truncated.append(cut_a or cut_b)
        return out
    if objective == "pairrm":
        m1, m2 = _ids(tokenizer, list(PAIRRM_MARKERS))
        avail = budget - len(m1) - len(m2)
        if avail < 3:
            raise ConfigError(f"max_length {max_length} is too small for a joint PairRM encoding")
        for p, a, b in zip(P, A, B, strict=True):
            cut = len(p) + len(a) + len(b) > avail
            if cut:
                cap = max(1, (avail - min(len(p), avail // 4)) // 2)
                a, b = a[:cap], b[:cap]
                keep = max(0, avail - len(a) - len(b))
                p = p[len(p) - keep :] if keep else []
            out.seq_a.append(pre + p + m1 + a + m2 + b + post)
            out.seq_b.append(pre + p + m1 + b + m2 + a + post)
            out.start_a.append(0)
            out.start_b.append(0)
            out.truncated.append(cut)
        return out
    raise ConfigError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by length (longest first, ties by index) cut into batches."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(seqs: Sequence[list[int]], starts: Sequence[int], pad_id: int):
    """Right-padded ids, attention mask, and a mask of response tokens (positions ≥ start)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    resp = torch.zeros((len(seqs), width), dtype=torch.bool)
    for row, (s, st) in enumerate(zip(seqs, starts, strict=True)):
        ids[row, : len(s)] = torch.tensor(s, dtype=torch.long)
        attn[row, : len(s)] = 1
        resp[row, st : len(s)] = True
    return ids, attn, resp


def head_module(model) -> torch.nn.Module:
    """The new scalar head of a sequence-classification model (``classifier`` or ``score``)."""
    for name in ("classifier", "score"):
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Module):
            return head
    raise ConfigError(
        f"{type(model).__name__} has no classifier/score head; use pooling: cls with this backbone"
    )


def mean_pool(hidden: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states over real tokens (padding positions excluded)."""
    mask = attn.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def scalar_scores(model, ids, attn, pooling: str = "cls") -> torch.Tensor:
    """The scalar head's output per sequence (float32), on the ``pooling`` of the sequence."""
    if pooling == "cls":
        return model(input_ids=ids, attention_mask=attn).logits[:, 0].float()
    if pooling != "mean":
        raise ConfigError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
    hidden = model.base_model(input_ids=ids, attention_mask=attn).last_hidden_state
    pooled = mean_pool(hidden, attn)
    head = head_module(model)
    # a Linear head takes the pooled vector; RoBERTa-style heads read position 0 of a sequence
    out = head(pooled) if isinstance(head, torch.nn.Linear) else head(pooled.unsqueeze(1))
    return out.reshape(len(ids), -1)[:, 0].float()


def response_logprobs(model, ids, attn, resp) -> torch.Tensor:
    """Σ log p(token | prefix) over response tokens, per sequence (differentiable)."""
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = resp[:, 1:]
    return (logp * mask).sum(-1)


def _weights_present(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))


def check_annotator_dir(path: str | os.PathLike) -> dict:
    """Validate an annotator folder; return its ``annotator.json``. Names the first missing piece."""
    path = Path(path)
    if not path.is_dir():
        raise ModelNotFoundError(
            f"annotator directory {path} does not exist (train one with cwpo train-annotator)"
        )
    meta_path = path / ANNOTATOR_FILE
    if not meta_path.exists():
        raise ModelNotFoundError(f"{path} is not an annotator directory: {ANNOTATOR_FILE} is missing")
    try:
        meta = read_json(meta_path)
    except ValueError as e:
        raise ModelNotFoundError(f"{meta_path}: not valid JSON ({e})") from None
    missing_keys = [k for k in ("objective", "max_length") if k not in meta]
    if missing_keys:
        raise ModelNotFoundError(f"{meta_path}: missing key(s) {missing_keys}")
    if meta["objective"] not in OBJECTIVES:
        raise ModelNotFoundError(f"{meta_path}: unknown objective {meta['objective']!r}; valid: {OBJECTIVES}")
    if meta.get("pooling", "cls") not in POOLINGS:
        raise ModelNotFoundError(f"{meta_path}: unknown pooling {meta['pooling']!r}; valid: {POOLINGS}")
    folders = [path] + ([path / REFERENCE_DIR] if meta["objective"] == "dpo" else [])
    for folder in folders:
        if not (folder / "config.json").exists():
            raise ModelNotFoundError(f"annotator directory {path}: {folder / 'config.json'} is missing")
        if not _weights_present(folder):
            raise ModelNotFoundError(
                f"annotator directory {path}: no model weights (*.safetensors) in {folder}"
            )
    if not _vocabulary_present(path):
        raise ModelNotFoundError(
            f"annotator directory {path}: tokenizer files are missing (tokenizer.json, or vocab.txt, "
            "vocab.json + merges.txt, or a sentencepiece .model); without them every word is [UNK]. "
            "Copy them from the backbone folder or train the annotator again"
        )
    return meta


def _vocabulary_present(folder: Path) -> bool:
    """A file that holds the tokenizer's vocabulary (``tokenizer_config.json`` alone holds none)."""
    return (
        (folder / "tokenizer.json").is_file()
        or (folder / "vocab.txt").is_file()
        or ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file())
        or any(folder.glob("*.model"))
    )


def check_vocabulary(path: str | os.PathLike, tokenizer, model_folder: str | os.PathLike) -> None:
    """The tokenizer must fit the model's embedding: no id past its rows, and not a stub of it.

    Read from ``config.json`` (``vocab_size``), so it runs before the weights are loaded.

    Models pad their embedding a little past the vocabulary (to a multiple of 64 or 128), so a
    tokenizer smaller than the embedding is fine unless it is less than half of it: that is a
    tokenizer of another model or one that lost its vocabulary file.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model_folder))
    n_emb = getattr(config.get_text_config(), "vocab_size", None)
    n_tok = len(tokenizer)
    if n_emb is None:
        return
    if n_tok > n_emb or 2 * n_tok < n_emb:
        raise ModelNotFoundError(
            f"annotator directory {path}: the tokenizer has {n_tok} tokens but the model's embedding has "
            f"{n_emb} rows: the tokenizer files do not belong to this model (copy them from the backbone "
            "folder or train the annotator again)"
        )


def resolve_dtype(dtype: str) -> torch.dtype:
    """``auto`` → bfloat16 on a CPU with native bf16 (AVX512-BF16/AMX) or a bf16 GPU, else float32."""
    if dtype == "float32":
        return torch.float32
    if dtype == "bfloat16":
        return torch.bfloat16
    if dtype != "auto":
        raise ConfigError(f"unknown dtype {dtype!r}; valid: auto, float32, bfloat16")
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return torch.float32
    return torch.bfloat16 if ("avx512_bf16" in flags or "amx_bf16" in flags) else torch.float32


class Annotator:
    """A loaded weak annotator: ``score_pairs(prompts, a, b)`` returns the margins Δ/T."""

    def __init__(
        self,
        objective,
        model,
        tokenizer,
        max_length,
        temperature=1.0,
        reference=None,
        beta=0.1,
        meta=None,
        pooling="cls",
        separator=False,
    ):
        if objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.separator = bool(separator)
        if objective == "dpo" and reference is None:
            raise ConfigError("the dpo objective needs a reference model")
        self.objective, self.model, self.tokenizer = objective, model, tokenizer
        self.max_length, self.temperature, self.reference, self.beta = (
            int(max_length),
            float(temperature),
            reference,
            beta,
        )
        self.meta = meta or {}
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @property
    def device(self):
        return next(self.model.parameters()).device

    def encode(self, prompts, responses_a, responses_b) -> EncodedPairs:
        return encode_pairs(
            self.tokenizer,
            self.objective,
            prompts,
            responses_a,
            responses_b,
            self.max_length,
            separator=self.separator,
        )

    def sequence_scores(self, seqs, starts, batch_size: int = 32, progress=None) -> torch.Tensor:
        """g(seq) for each sequence, in input order, length-bucketed, under inference mode."""
        out = torch.empty(len(seqs), dtype=torch.float32)
        with torch.inference_mode():
            for batch in length_buckets([len(s) for s in seqs], batch_size):
                ids, attn, resp = collate([seqs[i] for i in batch], [starts[i] for i in batch], self.pad_id)
                ids, attn, resp = ids.to(self.device), attn.to(self.device), resp.to(self.device)
                if self.objective == "dpo":
                    pol = response_logprobs(self.model, ids, attn, resp)
                    ref = response_logprobs(self.reference, ids, attn, resp)
                    values = self.beta * (pol - ref)
                else:
                    values = scalar_scores(self.model, ids, attn, self.pooling)
                out[batch] = values.float().cpu()
                if progress is not None:
                    progress.update(len(batch) / 2)
        return out

    def margins_from_encoded(self, enc: EncodedPairs, batch_size: int = 32, progress=None) -> torch.Tensor:
        """Δ/T per pair for already tokenized pairs (a-side minus b-side)."""
        n = len(enc)
        if n == 0:
            return torch.empty(0)
        scores = self.sequence_scores(enc.seq_a + enc.seq_b, enc.start_a + enc.start_b, batch_size, progress)
        return (scores[:n] - scores[n:]) / self.temperature

    def score_pairs(self, prompts, responses_a, responses_b, batch_size: int = 32) -> torch.Tensor:
        """Margins (float32 tensor [N]): > 0 means response a is preferred. Long pairs are truncated."""
        return self.margins_from_encoded(self.encode(prompts, responses_a, responses_b), batch_size)


def load_annotator(path: str | os.PathLike, dtype: str = "float32", device: str | None = None) -> Annotator:
    """Load an annotator folder written by :func:`cwpo.annotator.train_annotator`."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    from cwpo.models.registry import load_error_hint

    meta = check_annotator_dir(path)
    path = Path(path)
    torch_dtype = resolve_dtype(dtype)
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
        for folder in [path] + ([path / REFERENCE_DIR] if meta["objective"] == "dpo" else []):
            check_vocabulary(path, tok, folder)  # before the weights: a wrong vocabulary labels silently
        if meta["objective"] == "dpo":
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
            reference = AutoModelForCausalLM.from_pretrained(str(path / REFERENCE_DIR), dtype=torch_dtype)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(str(path), dtype=torch_dtype)
            reference = None
    except (OSError, ValueError) as e:
        raise load_error_hint(str(path), e) from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    tok.padding_side = "right"
    device = device or ("cuda" if torch.cuda.is_available() else None)
    for m in (model, reference):
        if m is not None:
            m.eval()
            if device:
                m.to(device)
            if m.config.pad_token_id is None:
                m.config.pad_token_id = tok.pad_token_id
    return Annotator(
        meta["objective"],
        model,
        tok,
        meta["max_length"],
        temperature=meta.get("temperature", 1.0),
        reference=reference,
        beta=meta.get("beta", 0.1),
        meta=meta,
        pooling=meta.get("pooling", "cls"),  # folders written before pooling was recorded: cls
        separator=meta.get("separator", False),  # folders written before it was recorded: none
    )
