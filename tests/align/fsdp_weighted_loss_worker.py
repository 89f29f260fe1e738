"""Run on two ranks by ``test_fsdp_weighted_loss.py``: the CW-DPO loss and gradients of an FSDP2-sharded
model (each rank half of the batch) against one unsharded process on the whole batch.

Prints ``MAX_GRAD_DIFF``, ``LOSS_ONE`` and ``LOSS_FSDP`` on rank 0. Layers are sharded as accelerate's
``TRANSFORMER_BASED_WRAP`` does: each decoder layer, then the root.
"""

import copy
import sys

import torch
from torch.distributed.fsdp import fully_shard

from cwpo.distributed import ranks
from cwpo.losses import LossType, preference_loss, weighted_mean
from cwpo.models.loading import load_causal_lm
from cwpo.models.logprobs import tokenize_pair

N = 8  # pairs in the global batch
WEIGHTS = torch.tensor([0.05, 0.9, 0.3, 1.0, 0.6, 0.15, 0.75, 0.45])
REF_OFFSET = torch.tensor([0.5, -1.0, 2.0, 0.0, -0.3, 1.2, -2.0, 0.8])  # makes the pairs' losses differ


def batch(tok, rows):
    """Right-padded ids, attention and response masks of chosen then rejected sequences."""
    seqs = [tokenize_pair(tok, p, r, 64) for p, r in rows]
    width = max(len(ids) for ids, _ in seqs)
    ids = torch.full((len(seqs), width), tok.pad_token_id)
    attn = torch.zeros_like(ids)
    resp = torch.zeros_like(ids)
    for i, (s, n_prompt) in enumerate(seqs):
        ids[i, : len(s)], attn[i, : len(s)], resp[i, n_prompt : len(s)] = torch.tensor(s), 1, 1
    return ids, attn, resp


def weighted_loss(model, tok, idx):
    prompts = [f"Question {i}: what is a kind answer?" for i in idx]
    rows = [(p, f" A kind answer {i}.") for p, i in zip(prompts, idx, strict=True)]
    rows += [(p, f" No {i}.") for p, i in zip(prompts, idx, strict=True)]
    ids, attn, resp = batch(tok, rows)
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    token_lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    logps = (token_lp * resp[:, 1:]).sum(-1)
    chosen, rejected = logps.chunk(2)
    ref_c, ref_r = chosen.detach() + REF_OFFSET[idx], rejected.detach() - REF_OFFSET[idx]
    per_pair = preference_loss(LossType.DPO, chosen, rejected, ref_c, ref_r, beta=0.5, epsilon=0.0, tau=0.5)
    return weighted_mean(per_pair, WEIGHTS[idx])


def main(model_dir: str) -> None:
    dist = ranks()
    torch.manual_seed(0)
    model, tok = load_causal_lm(model_dir)
    model.train()
    one = copy.deepcopy(model)
    loss_one = weighted_loss(one, tok, list(range(N)))  # one process, the whole batch
    loss_one.backward()

    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    loss = weighted_loss(model, tok, dist.mine(N))  # this rank's half of the batch
    loss.backward()  # FSDP reduce-scatters the gradients as the mean over ranks
    loss_fsdp = dist.all_sum(loss.detach().clone()) / dist.world

    diff = 0.0
    for (name, p), q in zip(model.named_parameters(), one.parameters(), strict=True):
        full = p.grad.full_tensor()
        assert full.shape == q.grad.shape, name
        diff = max(diff, (full - q.grad).abs().max().item())
    assert type(model.model.layers[0]).__name__.startswith("FSDP")  # really sharded
    if dist.is_main:
        print(f"MAX_GRAD_DIFF {diff:.3e}")
        print(f"LOSS_ONE {loss_one.item():.8f}")
        print(f"LOSS_FSDP {loss_fsdp.item():.8f}")
        print(f"GRAD_SCALE {max(q.grad.abs().max().item() for q in one.parameters()):.3e}")


if __name__ == "__main__":
    main(sys.argv[1])
