"""The weak annotator as an object: per-sequence scores and margins (pairs as tokens: encoding.py).

Every objective turns a pair (x, y_a, y_b) into two token sequences and a per-sequence score g;
the margin is Δ = g(seq_a) − g(seq_b) (Δ > 0: y_a preferred), divided by the calibration
temperature T (1 unless fitted):

* ``bt``: seq = x + y (raw text; with ``separator``, x [SEP] y: the tokens the tokenizer puts
  between the two texts of a pair), g = scalar head r(x, y) on the pooled sequence: ``mean`` pooling
  (the masked mean of the last hidden states; what sentence-transformers backbones such as
  MiniLM-L6 were trained for), ``response`` (the same mean over the response's tokens only: the
  prompt, shared by both sides of a pair, is read through attention but not averaged in) or
  ``cls`` (the model's own sequence-classification path: BERT's pooler over [CLS], the last token
  for causal LMs). The annotator folder records which.
* ``pairrm``: seq_a = joint(x, y_a, y_b), seq_b = joint(x, y_b, y_a), g = f(joint).
* ``dpo`` (WS-DPO): seq = x + y, g = β·[log π_w(y|x) − log π_ref(y|x)] (implicit reward).

Too-long sequences lose prompt tokens from the left first (the end of a dialogue matters most),
then response tokens from the right; ``encode_pairs`` reports which pairs were cut so a caller
can drop them instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cwpo.annotator.encoding import OBJECTIVES, EncodedPairs, encode_pairs
from cwpo.atomic_files import read_json
from cwpo.errors import ConfigError, ModelNotFoundError
from cwpo.models.logprobs import collate, length_buckets, response_logprobs
from cwpo.models.registry import LOAD_ERRORS, load_error_hint

POOLINGS = ("mean", "cls", "response")
ANNOTATOR_FILE = "annotator.json"
REFERENCE_DIR = "reference"


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


def scalar_scores(model, ids, attn, pooling: str = "cls", resp: torch.Tensor | None = None) -> torch.Tensor:
    """The scalar head's output per sequence (float32), on the ``pooling`` of the sequence.

    ``resp`` (bool [rows, length], response tokens; :func:`cwpo.models.logprobs.collate`) is
    needed by ``response`` pooling only.
    """
    if pooling == "cls":
        return model(input_ids=ids, attention_mask=attn).logits[:, 0].float()
    if pooling not in ("mean", "response"):
        raise ConfigError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
    if pooling == "response" and resp is None:
        raise ValueError("response pooling needs the response-token mask")
    hidden = model.base_model(input_ids=ids, attention_mask=attn).last_hidden_state
    pooled = mean_pool(hidden, attn if pooling == "mean" else resp.to(attn.dtype) * attn)
    head = head_module(model)
    # a Linear head takes the pooled vector; RoBERTa-style heads read position 0 of a sequence
    out = head(pooled) if isinstance(head, torch.nn.Linear) else head(pooled.unsqueeze(1))
    return out.reshape(len(ids), -1)[:, 0].float()


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
        chat_template=False,
    ):
        if objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.separator = bool(separator)
        self.chat_template = bool(chat_template)
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
            chat_template=self.chat_template,
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
                    values = scalar_scores(self.model, ids, attn, self.pooling, resp)
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
    except LOAD_ERRORS as e:
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
        chat_template=meta.get("chat_template", False),
    )
