"""LLM-judge win-rate through any OpenAI-compatible chat-completions endpoint.

The judging prompts are the paper's (:mod:`cwpo.pairwise_prompts`). The paper always put the
model's response in slot A and the dataset's chosen response in slot B; here the order is
randomized per item (seeded) to remove position bias, and the row records which slot held the
policy. The HTTP client (retries, timeouts, rate limit, answer cache) is :mod:`cwpo.llm_client`.
A verdict is read only from the judge's own words (:func:`parse_verdict`); an answer without a
clear "A" or "B" is counted as unparseable, never guessed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from cwpo.console import progress as progress_bar
from cwpo.llm_client import JudgeClient, JudgeError, chat_url
from cwpo.pairwise_prompts import TEMPLATES, parse_verdict, render_prompt

__all__ = [
    "TEMPLATES",
    "JudgeClient",
    "JudgeError",
    "chat_url",
    "judge_pairs",
    "parse_verdict",
    "render_prompt",
]


def judge_pairs(
    client: JudgeClient,
    prompts: Sequence[str],
    policy_responses: Sequence[str],
    baseline_responses: Sequence[str],
    *,
    template: str = "chatbot",
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Ask the judge about each (prompt, policy, baseline); the A/B order is a seeded coin flip.

    Returns one row per item: ``policy_slot`` ("A"/"B"), ``verdict`` ("A"/"B"/None), ``winner``
    ("policy"/"baseline"/None when unparseable) and the judge's raw ``answer``.
    """
    if not (len(prompts) == len(policy_responses) == len(baseline_responses)):
        raise ValueError("prompts, policy and baseline responses must have the same length")

    rng = random.Random(seed)
    rows = []
    for prompt, pol, base in progress_bar(
        list(zip(prompts, policy_responses, baseline_responses, strict=True)),
        desc="judge",
        unit="pair",
        disable=not progress,
    ):
        policy_slot = "A" if rng.random() < 0.5 else "B"
        a, b = (pol, base) if policy_slot == "A" else (base, pol)
        answer = client.complete([{"role": "user", "content": render_prompt(template, prompt, a, b)}])
        verdict = parse_verdict(answer)
        winner = None if verdict is None else ("policy" if verdict == policy_slot else "baseline")
        rows.append({"policy_slot": policy_slot, "verdict": verdict, "winner": winner, "answer": answer})
    return rows
