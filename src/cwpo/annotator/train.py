"""Train the weak annotator on human-labeled pairs D_l and save a self-describing folder.

Objectives (see :mod:`cwpo.annotator.model`): ``bt`` (paper Step 1, Eq. 5), ``pairrm``
(App. J.9), ``dpo`` (WS-DPO baseline: SFT on (x, y_w), then DPO against the frozen SFT model).

Paper defaults are 5 epochs, Adam, batch 32, full fine-tuning. The defaults here keep Adam, batch
32 and full fine-tuning, and were chosen by measurement (benchmarks/annotator/annotator_defaults.py and
benchmarks/annotator/hh_annotator.py; settings in :mod:`cwpo.annotator.config`): the scalar head
reads the *mean* of the last hidden states (``pooling: mean``; ``cls`` is the model's own
classification path), the new head learns at ``head_lr`` (1e-3) and the pretrained body at ``lr``
(3e-5), 3 epochs at max_length 256 without early stopping (optional: ``early_stopping`` on a
held-out ``val_frac`` of D_l keeps the best epoch's weights), and no dropout on the attention
probabilities (``attention_dropout: 0``, which lets the CPU use its fused attention kernel).
Training runs in a plain loop with seeded shuffling, length-bucketed batches and bf16 autocast
where the run-time probe finds it faster; the output folder is written atomically (a killed run
leaves no half folder; re-running starts over). Under ``accelerate launch`` each batch is split
over the ranks and the gradients summed (:func:`_step`): the one-process training, data parallel.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
from pathlib import Path

import torch

from cwpo.annotator.backbone import _load_backbone
from cwpo.annotator.calibration import calibration_report, fit_temperature
from cwpo.annotator.config import MIN_EARLY_STOPPING_PAIRS, MIN_TRAIN_PAIRS, TrainAnnotatorConfig
from cwpo.annotator.encoding import encode_pairs
from cwpo.annotator.model import ANNOTATOR_FILE, REFERENCE_DIR, Annotator, head_module, scalar_scores
from cwpo.annotator.reward_model_losses import bt_loss, pairrm_loss
from cwpo.annotator.tracking import write_scalars
from cwpo.atomic_files import write_json
from cwpo.console import progress
from cwpo.data.chat import require_chat_template, row_prompt
from cwpo.data.schema import read_pairs
from cwpo.distributed import ranks
from cwpo.errors import ConfigError, DataError, warn
from cwpo.hashing import hash_config, sha256_path
from cwpo.models.logprobs import collate, length_buckets, response_logprobs
from cwpo.outputs import atomic_dir, guard_output, write_manifest
from cwpo.runtime import resolve_bf16
from cwpo.tracking import report_targets


def _read_labeled(path: str, what: str) -> list[dict]:

    rows = read_pairs(path)
    if "chosen" not in rows[0]:
        raise DataError(f"{what} must hold labeled pairs (prompt, chosen, rejected)", path)
    return rows


BUCKET_WINDOW = 16  # batches per length-sorted window


def _batches(
    n: int, batch_size: int, rng: random.Random, lengths: list[int] | None = None
) -> list[list[int]]:
    """Seeded random batches; with ``lengths``, pairs of similar length share a batch.

    Length buckets: shuffle, cut into windows of ``BUCKET_WINDOW`` batches, sort each window by
    length, cut it into batches, shuffle the batch order. Every pair is still seen once per epoch
    in a random window; a batch pads to its own longest pair, not to a random one's.
    """
    order = list(range(n))
    rng.shuffle(order)
    if lengths is None:
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    window = batch_size * BUCKET_WINDOW
    batches = []
    for w in range(0, n, window):
        chunk = sorted(order[w : w + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _progress(total: int, desc: str, enabled: bool, unit: str = "step"):

    return progress(total=total, desc=desc, unit=unit, enabled=enabled)


def _to(model, *tensors):
    device = next(model.parameters()).device
    return tuple(t.to(device) for t in tensors)


def _amp(model, dtype):
    """bf16 autocast on the model's device (a no-op for float32)."""
    device = next(model.parameters()).device.type
    return torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32)


def _step(opt, loss, losses: list[float], bar, what: str) -> None:
    """One optimizer step on ``loss``, logged to ``losses`` and the bar; a non-finite loss stops
    the run with one line (before it reaches the weights).

    Under a launcher ``loss`` is this rank's share of the global batch's mean (its examples' sum
    over the global count): the loss and the gradients are summed over the ranks before the step,
    which gives the one-process step on the whole batch.
    """
    dist = ranks()
    total = dist.all_sum(loss.detach().float().clone())
    if not torch.isfinite(total):
        raise ConfigError(f"{what} loss became {float(total)} at step {len(losses) + 1}; lower --lr")
    opt.zero_grad(set_to_none=True)
    if loss.requires_grad:  # a rank without examples in this batch adds nothing
        loss.backward()
    dist.sum_gradients([p for group in opt.param_groups for p in group["params"]])
    opt.step()
    losses.append(float(total))
    bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.update(1)


def _sft(model, tok, rows, cfg, autocast_dtype) -> list[float]:
    """Supervised fine-tuning on (prompt, chosen): mean token NLL of the response."""
    enc = encode_pairs(
        tok,
        "dpo",
        [row_prompt(r) for r in rows],
        [r["chosen"] for r in rows],
        [r["chosen"] for r in rows],
        cfg.max_length,
        chat_template=cfg.chat_template,
    )
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = random.Random(cfg.seed + 1)
    losses = []
    model.train()
    steps = cfg.sft_epochs * math.ceil(len(rows) / cfg.batch_size)
    with _progress(steps, "sft", cfg.progress) as bar:
        for _ in range(cfg.sft_epochs):
            for batch in _batches(len(rows), cfg.batch_size, rng):
                # token-weighted mean over the whole batch: each rank's tokens over the global count
                n_tokens = sum(len(enc.seq_a[i]) - max(enc.start_a[i], 1) for i in batch)
                local = _my_share(batch)
                loss = torch.zeros(())
                if local:
                    ids, attn, resp = collate(
                        [enc.seq_a[i] for i in local], [enc.start_a[i] for i in local], tok.pad_token_id
                    )
                    ids, attn, resp = _to(model, ids, attn, resp)
                    with _amp(model, autocast_dtype):
                        lp = response_logprobs(model, ids, attn, resp)
                    loss = -lp.sum() / max(n_tokens, 1)
                _step(opt, loss, losses, bar, "SFT")
    model.eval()
    return losses


def _param_groups(model, cfg) -> list[dict]:
    """Adam parameter groups: the new scalar head at ``head_lr``, everything else at ``lr``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.objective == "dpo" or cfg.head_lr is None:
        return [{"params": params, "lr": cfg.lr}]
    head = {id(p) for p in head_module(model).parameters()}
    return [
        {"params": [p for p in params if id(p) not in head], "lr": cfg.lr},
        {"params": [p for p in params if id(p) in head], "lr": cfg.head_lr},
    ]


def _snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _train(model, reference, tok, rows, cfg, autocast_dtype, validate=None) -> tuple[list[float], dict]:
    """The objective's loop: per-example losses, mean over the batch, Adam step.

    With ``validate`` (a function returning ``{"loss": ...}`` on held-out pairs), it is called
    after every epoch; training stops after ``cfg.patience`` epochs without a lower loss and the
    weights of the best epoch are restored. Returns the step losses and the validation history.
    """
    enc = encode_pairs(
        tok,
        cfg.objective,
        [row_prompt(r) for r in rows],
        [r["chosen"] for r in rows],
        [r["rejected"] for r in rows],
        cfg.max_length,
        separator=cfg.separator,
        chat_template=cfg.chat_template,
    )
    ref_c = ref_r = None
    if cfg.objective == "dpo":
        ref_c, ref_r = _reference_logprobs(reference, tok, enc, cfg.eval_batch_size, autocast_dtype)
    opt = torch.optim.Adam(_param_groups(model, cfg))
    rng = random.Random(cfg.seed)
    lengths = (
        [max(len(a), len(b)) for a, b in zip(enc.seq_a, enc.seq_b, strict=True)]
        if cfg.length_buckets
        else None
    )
    losses = []
    history: list[dict] = []
    best: tuple[float, int, dict] | None = None  # (val loss, epoch, weights)
    model.train()
    steps = cfg.epochs * math.ceil(len(rows) / cfg.batch_size)
    with _progress(steps, f"train {cfg.objective}", cfg.progress) as bar:
        for epoch in range(1, cfg.epochs + 1):
            for full_batch in _batches(len(rows), cfg.batch_size, rng, lengths):
                batch = _my_share(full_batch)
                loss = torch.zeros(())
                if batch:
                    loss = _pair_losses(model, tok, enc, batch, cfg, autocast_dtype, ref_c, ref_r).sum()
                    loss = loss / len(full_batch)  # this rank's share of the mean over the whole batch
                _step(opt, loss, losses, bar, "training")
            if validate is None:
                continue
            model.eval()
            val = {"epoch": epoch, **validate()}
            model.train()
            history.append(val)
            if best is None or val["loss"] < best[0]:
                best = (val["loss"], epoch, _snapshot(model) if epoch < cfg.epochs else {})
            elif epoch - best[1] >= cfg.patience:
                break
    model.eval()
    if best is not None and best[1] != history[-1]["epoch"]:
        model.load_state_dict(best[2])
    return losses, {"val_curve": history, "best_epoch": best[1] if best else None}


def _my_share(batch: list[int]) -> list[int]:
    """This rank's examples of a batch (all of them in one process)."""
    dist = ranks()
    return batch[dist.rank :: dist.world]


def _pair_losses(model, tok, enc, batch, cfg, autocast_dtype, ref_c, ref_r) -> torch.Tensor:
    """The objective's per-pair losses (float32) of the pairs ``batch``."""
    seqs = [enc.seq_a[i] for i in batch] + [enc.seq_b[i] for i in batch]
    starts = [enc.start_a[i] for i in batch] + [enc.start_b[i] for i in batch]
    ids, attn, resp = collate(seqs, starts, tok.pad_token_id)
    k = len(batch)
    ids, attn, resp = _to(model, ids, attn, resp)
    with _amp(model, autocast_dtype):
        if cfg.objective == "dpo":
            lp = response_logprobs(model, ids, attn, resp)
            idx = torch.tensor(batch)
            ref_c, ref_r = ref_c.to(lp.device), ref_r.to(lp.device)
            per_example = bt_loss(cfg.beta * (lp[:k] - ref_c[idx]), cfg.beta * (lp[k:] - ref_r[idx]))
        else:
            s = scalar_scores(model, ids, attn, cfg.pooling, resp)
            per_example = bt_loss(s[:k], s[k:]) if cfg.objective == "bt" else pairrm_loss(s[:k], s[k:])
    return per_example.float()


def _reference_logprobs(reference, tok, enc, batch_size, autocast_dtype):
    """log π_ref(y|x) for the chosen (a) and rejected (b) sides, computed once before DPO."""
    n = len(enc)
    out = torch.empty(2 * n)
    seqs, starts = enc.seq_a + enc.seq_b, enc.start_a + enc.start_b
    with torch.inference_mode(), _amp(reference, autocast_dtype):
        for batch in length_buckets([len(s) for s in seqs], batch_size):
            ids, attn, resp = collate([seqs[i] for i in batch], [starts[i] for i in batch], tok.pad_token_id)
            out[batch] = response_logprobs(reference, *_to(reference, ids, attn, resp)).float().cpu()
    return out[:n].clone(), out[n:].clone()


def evaluate_annotator(annotator: Annotator, rows: list[dict], batch_size: int = 64) -> torch.Tensor:
    """Signed margins Δ = score(chosen) − score(rejected) on labeled rows (Δ > 0: agrees)."""
    return annotator.score_pairs(
        [row_prompt(r) for r in rows], [r["chosen"] for r in rows], [r["rejected"] for r in rows], batch_size
    )


def train_annotator(cfg: TrainAnnotatorConfig) -> dict:
    """Train, evaluate (and optionally calibrate) an annotator; write ``cfg.output``; return metrics."""
    guard_output(cfg.output, "train-annotator", overwrite=cfg.overwrite)  # before any work
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    rows = _read_labeled(cfg.train, "--train")
    eval_rows = _read_labeled(cfg.eval, "--eval") if cfg.eval else None
    if cfg.max_train_pairs:
        rows = rows[: cfg.max_train_pairs]
    # early stopping needs a few pairs to hold out; on fewer, every epoch runs (recorded in metrics)
    early_stopping = cfg.early_stopping and len(rows) >= MIN_EARLY_STOPPING_PAIRS
    held_rows: list[dict] = []  # one seeded held-out slice: early stopping and/or calibration
    if cfg.calibrate or early_stopping:
        order = list(range(len(rows)))
        random.Random(cfg.seed + 7).shuffle(order)
        frac = cfg.val_frac if early_stopping else cfg.calibration_frac
        n_cal = max(1, int(round(frac * len(rows))))
        if len(rows) - n_cal < 1:
            raise DataError(f"too few pairs ({len(rows)}) to hold out a calibration slice", cfg.train)
        cal_idx = set(order[:n_cal])
        held_rows = [r for i, r in enumerate(rows) if i in cal_idx]
        rows = [r for i, r in enumerate(rows) if i not in cal_idx]
    calib_rows = held_rows if cfg.calibrate else []
    val_rows = held_rows if early_stopping else []
    if len(rows) < MIN_TRAIN_PAIRS:
        warn(
            f"train-annotator: only {len(rows)} training pair(s) in {cfg.train}; below {MIN_TRAIN_PAIRS} "
            "the annotator's labels and confidences are close to noise"
        )
    autocast_dtype = torch.bfloat16 if resolve_bf16(cfg.bf16) else torch.float32

    model, tok = _load_backbone(cfg)
    if cfg.chat_template:
        require_chat_template(tok, cfg.backbone)
    model.to(ranks().device)
    model.train()
    start = time.perf_counter()
    sft_losses: list[float] = []
    reference = None
    if cfg.objective == "dpo":
        if cfg.sft_epochs:
            sft_losses = _sft(model, tok, rows, cfg, autocast_dtype)
        reference = copy.deepcopy(model).eval()
        for p in reference.parameters():
            p.requires_grad_(False)
    pooling = cfg.pooling if cfg.objective != "dpo" else "cls"

    def annotator_now() -> Annotator:
        return Annotator(
            cfg.objective,
            model,
            tok,
            cfg.max_length,
            reference=reference,
            beta=cfg.beta,
            pooling=pooling,
            separator=cfg.separator,
            chat_template=cfg.chat_template,
        )

    def validate() -> dict:
        m = evaluate_annotator(annotator_now(), val_rows, cfg.eval_batch_size).double()
        agree = (m > 0).double() + 0.5 * (m == 0).double()
        return {"loss": float(torch.nn.functional.softplus(-m).mean()), "accuracy": float(agree.mean())}

    losses, history = _train(model, reference, tok, rows, cfg, autocast_dtype, validate if val_rows else None)
    train_time = time.perf_counter() - start

    annotator = annotator_now()
    per_epoch = math.ceil(len(rows) / cfg.batch_size)
    temperature = 1.0
    metrics: dict = {
        "objective": cfg.objective,
        "backbone": cfg.backbone,
        "n_train": len(rows),
        "train_time_s": train_time,
        "train_steps": len(losses),
        "train_loss_first": losses[0],
        "train_loss_last": losses[-1],
        "epoch_mean_losses": [
            sum(losses[i : i + per_epoch]) / len(losses[i : i + per_epoch])
            for i in range(0, len(losses), per_epoch)
        ],
        "epochs_run": math.ceil(len(losses) / per_epoch),
        "sft_steps": len(sft_losses),
        "precision": "bf16" if autocast_dtype == torch.bfloat16 else "fp32",
        "torch_threads": torch.get_num_threads(),
    }
    metrics["early_stopping"] = (
        "on"
        if val_rows
        else f"skipped: fewer than {MIN_EARLY_STOPPING_PAIRS} pairs"
        if cfg.early_stopping
        else "off"
    )
    if val_rows:
        metrics.update(n_val=len(val_rows), **history)
    if calib_rows:
        cal_margins = evaluate_annotator(annotator, calib_rows, cfg.eval_batch_size)
        temperature = fit_temperature(cal_margins)
        metrics["calibration_slice"] = {
            "before": calibration_report(cal_margins),
            "after": calibration_report(cal_margins, temperature),
        }
    metrics["temperature"] = temperature
    if eval_rows:
        margins = evaluate_annotator(annotator, eval_rows, cfg.eval_batch_size)
        before = calibration_report(margins)
        metrics["eval"] = calibration_report(margins, temperature)
        metrics["eval_before_calibration"] = before
        metrics["eval_accuracy"] = before["accuracy"]
        metrics["eval_accuracy_top30"] = before["accuracy_top30"]
        metrics["eval_ece"] = metrics["eval"]["ece"]

    meta = {
        "objective": cfg.objective,
        "backbone": cfg.backbone,
        "max_length": cfg.max_length,
        "pooling": pooling,
        "separator": cfg.separator,
        **({"chat_template": True} if cfg.chat_template else {}),  # absent: plain text, as before
        "temperature": temperature,
        "beta": cfg.beta,
        "score": {
            "bt": "r(x, y) scalar head; margin r(x, y_a) - r(x, y_b)",
            "pairrm": "f(x, y_a, y_b) - f(x, y_b, y_a)",
            "dpo": "beta * (log pi(y_a|x) - log pi_ref(y_a|x) - log pi(y_b|x) + log pi_ref(y_b|x))",
        }[cfg.objective],
        "confidence": "tanh(|margin / temperature| / 2)",
    }
    config = dataclasses.asdict(cfg)
    inputs = {"train": sha256_path(cfg.train), "eval": sha256_path(cfg.eval) if cfg.eval else None}
    metrics["processes"] = ranks().world
    if ranks().is_main:  # every rank holds the same weights; rank 0 writes them
        with atomic_dir(cfg.output) as tmp:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            if reference is not None:
                reference.save_pretrained(Path(tmp) / REFERENCE_DIR)
            write_json(Path(tmp) / ANNOTATOR_FILE, meta)
            write_json(Path(tmp) / "metrics.json", metrics)
            if report_targets(cfg.report_to):
                write_scalars(Path(tmp), sft_losses, losses, per_epoch, metrics)
            write_manifest(tmp, "train-annotator", config, hash_config(inputs), metrics)
    ranks().barrier()
    return metrics
