"""Batched sampling from a causal LM with per-prompt seeds, cached by content hash, resumable.

**Sampling.** Every prompt has its own random stream: a ``torch.Generator`` seeded from
sha256(seed, prompt, k) where k counts earlier copies of the same prompt. At each step the
logits of a row are divided by the temperature, cut to the ``top_k`` best and to the nucleus
(``top_p``), and one token is drawn by inverse-CDF sampling with a single uniform number from that
row's stream (exact sampling from the filtered softmax, one random draw per row and step). The
processor then leaves only the drawn token finite, so ``generate`` runs greedy over its scores.
The randomness a row sees therefore depends only on (seed, prompt, step), never on which other
prompts share its batch. The logits themselves can still differ in the last bits with the amount
of left padding (bf16 matmuls), so the *guarantee* is: identical model, prompts, settings, seed
and batch size give identical text; another batch composition almost always gives the same text
too (a test checks it in fp32). ``temperature=0`` is greedy.

**Batching.** Prompts are tokenized with the project's one rule
(:func:`cwpo.models.logprobs.tokenize_pair`: raw text, no chat template unless asked), sorted
by length (longest first), cut into batches of ``batch_size`` and left-padded. Weights are loaded
in bf16 by default (faster than autocast for generation on CPU, see ENVIRONMENT.md).

**Cache and resume.** The cache key is the hash of (the model folder's content hash or the hub
id, the prompts, every setting, the seed). A finished run is one JSONL file
``<cache_dir>/<key>.jsonl``; a second call returns it without loading the model. While running,
each finished batch is appended to ``<key>.partial.jsonl`` (flushed and fsynced); a killed run
restarts at the first unfinished batch with the same batch plan, so it resumes exactly.

**Scales out.** Under ``accelerate launch`` rank r samples batches r, r + W, ... of the same plan
(each rank logs to its own ``<key>.partial-rank<r>.jsonl``) and rank 0 writes the one output after
a barrier. Batches and per-row random streams are those of one process, so the output is
byte-identical to a one-process run's (``tests/evaluate/test_generation_ranks.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from cwpo.atomic_files import write_jsonl
from cwpo.console import progress as progress_bar
from cwpo.console import short_ref
from cwpo.data.chat import chat_prompt_text, transcript
from cwpo.distributed import ranks
from cwpo.errors import ConfigError
from cwpo.hashing import hash_config, sha256_path
from cwpo.runtime import resolve_bf16

CACHE_FORMAT = "cwpo-generation-v2"  # v2: each row keeps its sampled token ids
_MODEL_HASHES: dict[tuple, str] = {}


def model_content_id(model_ref: str) -> str:
    """A stable id of the model's weights: the content hash of a local folder, else the hub id.

    For a LoRA adapter folder the id of its base model is appended (a changed base is a new model).

    Folder hashes are memoized per process by (path, names, sizes, mtimes) of its files.
    """
    from cwpo.models import resolve_model
    from cwpo.models.adapter_base import ADAPTER_CONFIG, adapter_base

    resolved = resolve_model(model_ref, check_hub=False)  # an id, not a load: the hub is not needed
    path = Path(resolved)
    if not path.exists():
        return f"hub:{resolved}"
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    stamp = (str(path.resolve()), tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if stamp not in _MODEL_HASHES:
        _MODEL_HASHES[stamp] = "sha256:" + sha256_path(path)
    if (path / ADAPTER_CONFIG).exists():  # a LoRA adapter: its weights and those of its base
        return f"{_MODEL_HASHES[stamp]}+{model_content_id(adapter_base(path))}"
    return _MODEL_HASHES[stamp]


def row_seeds(prompts: Sequence[str | list[dict]], seed: int) -> list[int]:
    """One 63-bit seed per prompt from (seed, prompt, copy number): independent of batching.

    A prompt given as chat messages is keyed by its JSON text."""
    seen: dict[str, int] = {}
    out = []
    for p in prompts:
        p = p if isinstance(p, str) else json.dumps(p, sort_keys=True)
        k = seen.get(p, 0)
        seen[p] = k + 1
        digest = hashlib.sha256(f"{seed}\x00{k}\x00{p}".encode()).digest()
        out.append(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return out


class RowSampler:
    """A logits processor: temperature, top-k, top-p, then one seeded inverse-CDF draw per row.

    Returns scores that are -inf except at the drawn token, so greedy decoding emits the sample.
    ``set_rows(seeds)`` starts one generator per row of the next batch. (A Gumbel-max draw would
    need two logarithms over the whole vocabulary per step; this needs one uniform per row.)
    """

    def __init__(self, temperature: float, top_p: float, top_k: int):
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generators: list = []

    def set_rows(self, seeds: Sequence[int]) -> None:
        import torch

        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids, scores):
        import torch

        scores = scores.float()
        if self.temperature == 0:
            return scores
        scores = scores / self.temperature
        if self.top_k and self.top_k < scores.shape[-1]:
            kth = torch.topk(scores, self.top_k, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_scores, sorted_idx = torch.sort(scores, descending=True, dim=-1)
            probs = torch.softmax(sorted_scores, dim=-1)
            remove = (probs.cumsum(-1) - probs) > self.top_p  # mass before this token already > p
            remove[..., 0] = False
            scores = scores.masked_fill(remove.scatter(-1, sorted_idx, remove), float("-inf"))
        cdf = torch.softmax(scores, dim=-1).cumsum(-1)
        u = torch.cat([torch.rand(1, generator=g) for g in self.generators]).to(scores.device).unsqueeze(-1)
        # first index whose cdf exceeds u * total: never a zero-probability (filtered) token
        idx = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp(max=scores.shape[-1] - 1)
        return torch.full_like(scores, float("-inf")).scatter_(-1, idx, 0.0)


def prompt_token_ids(
    tokenizer, prompts: Sequence[str | list[dict]], chat_template: bool, max_prompt_length: int
) -> list[list[int]]:
    from cwpo.models.logprobs import tokenize_pair

    out = []
    for p in prompts:
        # chat messages without the chat template: their transcript, as the data stage writes it
        text = chat_prompt_text(tokenizer, p) if chat_template else p if isinstance(p, str) else transcript(p)
        ids, _ = tokenize_pair(tokenizer, text, "", max_prompt_length)
        if not ids:
            raise ConfigError(
                "an empty prompt cannot be continued (no tokens); remove it from the prompts file"
            )
        out.append(ids)
    return out


def _generation_attention() -> str:
    """``auto``: ``$CWPO_ATTN`` if set, else SDPA (transformers' default).

    Eager (matmul) attention was the CPU default for a while: it decodes faster on unpadded
    batches of equal-length prompts, but not on padded IMDb batches (``benchmarks/speed/speed.py``,
    ``speed.md``), so SDPA is the default again; ``CWPO_ATTN=eager`` keeps
    a run's samples comparable with one sampled that way (the kernel is in the cache key).
    """
    return os.environ.get("CWPO_ATTN") or "sdpa"


def _partial_files(root: Path, key: str) -> list[Path]:
    """Every log of finished batches of ``key``: one process's, and each rank's of a launched run."""
    return sorted(root.glob(f"{key}.partial*.jsonl"))


def _read_partial(paths: Sequence[Path], plan: list[list[int]]) -> dict[int, tuple[list[str], list]]:
    """Finished batches of killed (or finished, not yet merged) runs; a torn last line or a
    different plan is ignored. Batches are a fixed function of the prompts and ``batch_size``, so
    logs written by any number of ranks combine."""
    done: dict[int, tuple[list[str], list]] = {}
    for path in paths:
        if not path.exists():
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn line (a kill mid-write): the batches after it still count
                b = rec.get("batch")
                if (
                    isinstance(b, int)
                    and 0 <= b < len(plan)
                    and rec.get("indices") == plan[b]
                    and "ids" in rec
                ):
                    done[b] = (rec["responses"], rec["ids"])
    return done


def _read_final(final: Path) -> tuple[list[str], list[list[int]]]:
    with open(final, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [r["response"] for r in rows], [r["ids"] for r in rows]


def generate_responses(
    model_ref: str,
    prompts: Sequence[str | list[dict]],
    *,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    batch_size: int = 8,
    cache_dir: str | os.PathLike | None = None,
    dtype: str = "bfloat16",
    chat_template: bool = False,
    max_prompt_length: int = 512,
    progress: bool = True,
    stats: dict | None = None,
    cache_implementation: str | None = None,
    attn_implementation: str = "auto",
    return_ids: bool = False,
):
    """Sample one response per prompt from ``model_ref`` (see the module docstring).

    Returns the texts; with ``return_ids``, ``(texts, ids)`` where ``ids[i]`` are the token ids
    drawn for prompt i, up to and including the end-of-sequence token when one was drawn (what a
    log-probability of the sample must be computed on: decoding and re-tokenizing is not exact).

    ``dtype="auto"`` is bf16 where :func:`cwpo.runtime.bf16_is_faster` (a cached matmul probe)
    says so, else float32; the resolved dtype enters the cache key. ``cache_implementation``
    (``None``: transformers' dynamic KV cache, or ``"static"``) changes speed, not the text.
    ``attn_implementation``: ``"auto"`` (default: ``$CWPO_ATTN`` if set, else ``"sdpa"``; see
    :func:`_generation_attention`), ``"eager"`` or ``"sdpa"``. It changes speed and, through
    rounding, which tokens are drawn (not their distribution), so the resolved value enters the
    cache key.

    ``cache_dir=None`` uses ``$CWPO_CACHE/generations``. ``stats``, if given, is filled with
    ``cache_hit``, ``new_tokens``, ``seconds`` and ``tokens_per_s``.
    """
    errors = []
    if max_new_tokens < 1:
        errors.append(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        errors.append(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        errors.append(f"top_p must be in (0, 1], got {top_p}")
    if top_k < 0:
        errors.append(f"top_k must be >= 0 (0 = off), got {top_k}")
    if batch_size < 1:
        errors.append(f"batch_size must be >= 1, got {batch_size}")
    if attn_implementation == "auto":
        attn_implementation = _generation_attention()
    if attn_implementation not in ("sdpa", "eager"):
        errors.append(f"attn_implementation must be auto, sdpa or eager, got {attn_implementation!r}")
    if dtype not in ("bfloat16", "float32", "float16", "auto"):
        errors.append(f"dtype must be bfloat16, float32, float16 or auto, got {dtype!r}")
    if errors:
        raise ConfigError("invalid generation settings: " + "; ".join(errors))
    if dtype == "auto":
        dtype = "bfloat16" if resolve_bf16("auto") else "float32"
    prompts = list(prompts)
    stats = stats if stats is not None else {}
    if not prompts:
        stats.update(cache_hit=True, new_tokens=0, seconds=0.0, tokens_per_s=None)
        return ([], []) if return_ids else []
    from cwpo.models import cache_dir as default_cache

    settings = {
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k,
        "seed": seed,
        "batch_size": batch_size,
        "dtype": dtype,
        "chat_template": chat_template,
        "max_prompt_length": max_prompt_length,
        "attn_implementation": attn_implementation,
    }
    key = hash_config(
        {
            "format": CACHE_FORMAT,
            "model": model_content_id(model_ref),
            "prompts": hashlib.sha256(json.dumps(prompts).encode()).hexdigest(),
            "settings": settings,
        }
    )
    root = Path(cache_dir) if cache_dir is not None else default_cache() / "generations"
    final = root / f"{key}.jsonl"
    if final.exists():
        cached, cached_ids = _read_final(final)
        if len(cached) == len(prompts):
            stats.update(cache_hit=True, new_tokens=0, seconds=0.0, tokens_per_s=None, cache_file=str(final))
            return (cached, cached_ids) if return_ids else cached

    import torch
    from transformers import GenerationConfig

    # torch/transformers (~2-8 s) load only when a model generates (cached responses need none)
    from cwpo.models.loading import load_causal_lm

    dist = ranks()
    model, tok = load_causal_lm(
        model_ref, dtype=getattr(torch, dtype), attn_implementation=attn_implementation
    )
    model.to(dist.device)
    ids = prompt_token_ids(tok, prompts, chat_template, max_prompt_length)
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    plan = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    # one log per rank (launched), so ranks never append to the same file
    partial = root / (f"{key}.partial.jsonl" if dist.world == 1 else f"{key}.partial-rank{dist.rank}.jsonl")
    done = _read_partial(_partial_files(root, key), plan)
    mine = [b for b in dist.mine(len(plan)) if b not in done]
    seeds = row_seeds(prompts, seed)
    responses: list[str | None] = [None] * len(prompts)
    sampled: list[list[int] | None] = [None] * len(prompts)
    for b, (texts, tids) in done.items():
        for i, text, t in zip(plan[b], texts, tids, strict=True):
            responses[i], sampled[i] = text, t

    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    eos = (
        model.generation_config.eos_token_id
        if model.generation_config.eos_token_id is not None
        else tok.eos_token_id
    )
    eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
    gen_config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=max_new_tokens,
        pad_token_id=pad_id,
        eos_token_id=list(eos_ids) or None,
        cache_implementation=cache_implementation,
    )
    sampler = RowSampler(temperature, top_p, top_k)
    new_tokens, start = 0, time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    bar = progress_bar(
        total=sum(len(plan[b]) for b in mine),
        desc=f"generate {short_ref(model_ref)}",
        unit="prompt",
        disable=not progress or not dist.is_main,
    )
    with open(partial, "a", encoding="utf-8") as log, torch.inference_mode():
        for b in mine:
            batch = plan[b]
            width = max(len(ids[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, width - len(ids[i]) :] = torch.tensor(ids[i])
                attention[row, width - len(ids[i]) :] = 1
            sampler.set_rows([seeds[i] for i in batch])
            out = model.generate(
                input_ids=input_ids.to(dist.device),
                attention_mask=attention.to(dist.device),
                generation_config=gen_config,
                logits_processor=[sampler],
            )
            texts, tids = [], []
            for row in out[:, width:].tolist():
                cut = next((j + 1 for j, t in enumerate(row) if t in eos_ids), len(row))
                new_tokens += cut
                tids.append(row[:cut])
                texts.append(
                    tok.decode(row[:cut], skip_special_tokens=True, clean_up_tokenization_spaces=False)
                )
            for i, text, t in zip(batch, texts, tids, strict=True):
                responses[i], sampled[i] = text, t
            log.write(json.dumps({"batch": b, "indices": batch, "responses": texts, "ids": tids}) + "\n")
            log.flush()
            os.fsync(log.fileno())
            elapsed = time.perf_counter() - start
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{new_tokens / max(elapsed, 1e-9):.1f}")
    bar.close()
    dist.barrier()  # every rank's batches are logged
    if dist.world > 1 and dist.is_main:
        for b, (texts, tids) in _read_partial(_partial_files(root, key), plan).items():
            for i, text, t in zip(plan[b], texts, tids, strict=True):
                responses[i], sampled[i] = text, t
    if dist.is_main:
        if None in responses or None in sampled:  # never a cache file with holes
            raise RuntimeError("a batch of the generation plan has no response (a rank's log is missing)")
        rows = (
            {"prompt": p, "response": r, "ids": t}
            for p, r, t in zip(prompts, responses, sampled, strict=True)
        )
        write_jsonl(final, rows)
        for path in _partial_files(root, key):
            path.unlink(missing_ok=True)
    dist.barrier()  # the one output is written
    if not dist.is_main:
        responses, sampled = _read_final(final)
    elapsed = time.perf_counter() - start
    stats.update(
        cache_hit=False,
        new_tokens=new_tokens,
        seconds=elapsed,
        tokens_per_s=new_tokens / elapsed if elapsed > 0 else None,
        cache_file=str(final),
        resumed_batches=len(done),
        processes=dist.world,
    )
    return (responses, sampled) if return_ids else responses  # type: ignore[return-value]
