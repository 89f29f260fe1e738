"""Online CW-DPO (paper App. J.5): sample two responses, let the weak annotator judge, weighted step.

Each round: take ``prompts_per_round`` prompts, sample two responses per prompt from the current
policy, score them with the weak annotator (``score_pairs(prompts, a, b)`` → margins Δ = r(a) − r(b)),
label y_w / y_l by the sign of Δ with confidence c = tanh(|Δ|/2), and take one optimizer step on
E[w·ℓ] (w from the chosen weighting, ℓ DPO/IPO/rDPO). The reference is the starting policy (the
LoRA adapter disabled). The paper finds this *worse* than offline CW-DPO (distribution shift).

The log-probs use the project's one tokenization rule (:mod:`cwpo.models.logprobs`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cwpo.atomic_files import write_json
from cwpo.config import check, to_dict
from cwpo.console import progress
from cwpo.data.readers import read_records
from cwpo.errors import ConfigError, DataError
from cwpo.hashing import hash_config, sha256_path
from cwpo.losses import LOSS_NAMES, LossType, logged_implicit_reward, weighted_preference_loss
from cwpo.machine import now_iso
from cwpo.models import resolve_model
from cwpo.models.adapter_base import record_base
from cwpo.models.loading import load_causal_lm
from cwpo.models.logprobs import text_response_logprobs
from cwpo.outputs import atomic_dir, guard_output, write_manifest
from cwpo.weighting import confidence, get_weighting


@dataclass
class OnlineConfig:
    prompts: str = field(default="", metadata={"help": "JSONL/Parquet file with a 'prompt' column"})
    policy: str = field(default="", metadata={"help": "the SFT model (start point and reference)"})
    annotator: str = field(default="", metadata={"help": "weak annotator folder (cwpo train-annotator)"})
    output: str = field(default="", metadata={"help": "result folder"})
    loss: Literal[LOSS_NAMES] = "dpo"
    weighting: str = "confidence"
    beta: float = 0.1
    epsilon: float = 0.1
    tau: float | None = None
    rounds: int = field(default=10, metadata={"help": "sample-label-step rounds"})
    prompts_per_round: int = field(default=4, metadata={"help": "prompts (pairs) per round"})
    max_new_tokens: int = field(default=48, metadata={"help": "tokens sampled per response"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    lr: float = 5e-5
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    max_length: int = 512
    seed: int = 0
    overwrite: bool = field(
        default=False,
        metadata={"help": "replace an earlier cwpo output of this stage at --output (never other files)"},
    )

    def __post_init__(self):
        errors = []
        for name in (
            "prompts",
            "policy",
            "output",
        ):  # annotator: a folder, or an object passed to online_align
            if not getattr(self, name):
                errors.append(f"{name} is required")
        try:
            LossType.parse(self.loss)
            get_weighting(self.weighting)
        except ConfigError as e:
            errors.append(str(e))
        if not (math.isfinite(self.beta) and self.beta > 0):
            errors.append(f"beta must be a finite number > 0, got {self.beta}")
        if not 0 <= self.epsilon < 0.5:
            errors.append(f"epsilon must be in [0, 0.5), got {self.epsilon}")
        if self.tau is not None and not self.tau > 0:
            errors.append(f"tau must be > 0, got {self.tau}")
        for name in ("rounds", "prompts_per_round", "max_new_tokens"):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.temperature > 0:
            errors.append(f"temperature must be > 0, got {self.temperature}")
        if not self.lr > 0:
            errors.append(f"lr must be > 0, got {self.lr}")
        check(errors, "online align config")


def read_prompts(path: str) -> list[str]:
    """The prompts of ``path``: a ``prompt`` column in any file ``cwpo data`` reads."""

    rows = read_records(path)
    prompts = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row.get("prompt"), str) or not row["prompt"]:
            raise DataError("needs a non-empty text 'prompt' column", path, i)
        prompts.append(row["prompt"])
    if not prompts:
        raise DataError("holds no prompts", path)
    return prompts


def sample_pairs(model, tokenizer, prompts, max_new_tokens: int, temperature: float):
    """Two sampled continuations per prompt (left-padded batch generation)."""
    import torch

    tokenizer.padding_side = "left"
    enc = tokenizer(list(prompts) * 2, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    tokenizer.padding_side = "right"
    n = len(prompts)
    return texts[:n], texts[n:]


def online_align(cfg: OnlineConfig, annotator) -> dict:
    """Run online CW-DPO with ``annotator``: any object with ``score_pairs(prompts, a, b)`` → margins
    (the CLI passes :func:`cwpo.annotator.load_annotator` of ``cfg.annotator``; ``align`` does not
    import the annotator package)."""
    import torch
    from peft import get_peft_model
    from transformers import set_seed

    # PEFT/TRL (~10 s) load when the loop runs; OnlineConfig serves `cwpo align --help`
    from cwpo.align.trainable_model import lora_config

    guard_output(cfg.output, "align-online", overwrite=cfg.overwrite)  # before any work
    prompts = read_prompts(cfg.prompts)
    if annotator is None or not callable(getattr(annotator, "score_pairs", None)):
        raise ConfigError(
            "online align needs a weak annotator: an object with score_pairs(prompts, a, b), e.g. "
            "cwpo.annotator.load_annotator(cfg.annotator)"
        )
    loss_type = LossType.parse(cfg.loss)
    weighting = get_weighting(cfg.weighting)
    set_seed(cfg.seed)
    base, tok = load_causal_lm(cfg.policy)
    model = get_peft_model(base, lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.05)
    rng = torch.Generator().manual_seed(cfg.seed)
    steps = []
    bar = progress(range(cfg.rounds), desc="online CW-DPO", unit="round")
    for step in bar:
        start = time.perf_counter()
        idx = torch.randperm(len(prompts), generator=rng)[: cfg.prompts_per_round].tolist()
        batch = [prompts[i] for i in idx]
        model.eval()
        a, b = sample_pairs(model, tok, batch, cfg.max_new_tokens, cfg.temperature)
        margins = torch.as_tensor(annotator.score_pairs(batch, a, b), dtype=torch.float64).flatten()
        if margins.shape != (len(batch),) or not torch.isfinite(margins).all():
            raise ValueError(f"annotator returned margins of shape {tuple(margins.shape)} (or non-finite)")
        chosen = [x if m >= 0 else y for x, y, m in zip(a, b, margins.tolist(), strict=True)]
        rejected = [y if m >= 0 else x for x, y, m in zip(a, b, margins.tolist(), strict=True)]
        weights = weighting(margins).float()
        model.train()
        with torch.no_grad(), model.disable_adapter():
            ref_c, _ = text_response_logprobs(model, tok, batch, chosen, cfg.max_length)
            ref_r, _ = text_response_logprobs(model, tok, batch, rejected, cfg.max_length)
        pol_c, n_c = text_response_logprobs(model, tok, batch, chosen, cfg.max_length)
        pol_r, n_r = text_response_logprobs(model, tok, batch, rejected, cfg.max_length)
        loss, per = weighted_preference_loss(
            loss_type,
            pol_c,
            pol_r,
            ref_c,
            ref_r,
            weights,
            chosen_tokens=n_c,
            rejected_tokens=n_r,
            beta=cfg.beta,
            epsilon=cfg.epsilon,
            tau=cfg.tau,
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        margin_r = logged_implicit_reward(pol_c, ref_c, cfg.beta) - logged_implicit_reward(
            pol_r, ref_r, cfg.beta
        )
        steps.append(
            {
                "step": step + 1,
                "loss": loss.item(),
                "loss/unweighted": per.mean().item(),
                "rewards/margins": margin_r.mean().item(),
                "confidence/mean": torch.as_tensor(confidence(margins)).mean().item(),
                "weight/mean": weights.mean().item(),
                "step_time_s": time.perf_counter() - start,
            }
        )
        bar.set_postfix(loss=f"{loss.item():.4f}")
    out = Path(cfg.output)
    resolved = resolve_model(cfg.policy)
    summary = {"rounds": cfg.rounds, "final_loss": steps[-1]["loss"], "finished": now_iso()}
    ihash = hash_config(
        {
            "prompts": sha256_path(cfg.prompts),
            "policy": sha256_path(resolved) if os.path.exists(resolved) else resolved,
        }
    )
    with atomic_dir(out) as tmp:  # an earlier output stays whole until this one is complete
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        record_base(tmp, cfg.policy, final_dir=out)
        write_json(tmp / "metrics.json", {"summary": summary, "steps": steps})
        write_json(tmp / "cwpo_config.json", to_dict(cfg))
        write_manifest(tmp, "align-online", to_dict(cfg), ihash, summary)
    return {"output": str(out), **summary}
