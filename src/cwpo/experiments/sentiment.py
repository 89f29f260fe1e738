"""The controlled-sentiment track (as in the DPO paper's IMDb experiment), with a real gold.

Prompts are IMDb review prefixes; the strong model is first SFT-trained on IMDb text (prefix ->
continuation of real reviews); preference pairs are two samples of that SFT model per prompt;
the gold reward is VADER sentiment; "human" labels come from simulated annotators with
Bradley-Terry noise (:mod:`cwpo.experiments.simulate`).
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from cwpo.config import check
from cwpo.data.hh_prompts import hh_prompts
from cwpo.data.imdb import clean_review, imdb_prompts
from cwpo.data.schema import to_labeled, write_pairs
from cwpo.data.split import split_pool
from cwpo.errors import DataError
from cwpo.evaluate.gold import get_gold
from cwpo.experiments.simulate import gold_agreement, simulate_labels


@dataclass
class SentimentConfig:
    imdb: str = field(default="", metadata={"help": "folder with IMDb train.jsonl.gz and test.jsonl.gz"})
    prompt_source: str = field(
        default="imdb",
        metadata={
            "help": "imdb (review prefixes; set imdb), or HH-RLHF transcripts (a folder, or "
            "cwpo:hh-rlhf-slice): their distinct first human turns (needs eval_set; n_sft_texts 0)"
        },
    )
    max_prompt_words: int = field(default=32, metadata={"help": "HH-RLHF prompts: longest first turn kept"})
    n_sft_texts: int = field(
        default=600,
        metadata={"help": "IMDb train reviews for the SFT stage (0: no SFT, the strong model as is)"},
    )
    sft_response_words: int = field(
        default=24, metadata={"help": "words of review continuation per SFT example"}
    )
    n_prompts: int = field(default=300, metadata={"help": "IMDb train prefixes that become preference pairs"})
    n_test_prompts: int = field(
        default=96, metadata={"help": "IMDb test prefixes for GRA (split in 3 subsets)"}
    )
    prompt_words: int = field(default=8, metadata={"help": "words of review per prompt"})
    max_new_tokens: int = field(default=24, metadata={"help": "tokens per sampled response"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of the pair samples"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus mass of the pair samples"})
    gold: str = field(
        default="vader", metadata={"help": "gold reward (vader, reward model, module:function)"}
    )
    human_temperature: float = field(
        default=0.1, metadata={"help": "BT noise T of simulated humans (0 = noise-free)"}
    )
    human_flip: float = field(
        default=0.0,
        metadata={"help": "uniform label noise: each simulated label flipped with this probability"},
    )
    labeled_frac: float = field(default=0.3, metadata={"help": "share of pairs with human labels (D_l)"})
    batch_size: int = field(default=16, metadata={"help": "generation batch size"})
    eval_set: str | None = field(
        default=None,
        metadata={
            "help": "test | val: evaluate on the fixed test prompts or on the validation prompts disjoint "
            "from them (for choosing hyper-parameters); unset: a per-seed sample of test prefixes (v1)"
        },
    )
    n_val_prompts: int = field(default=300, metadata={"help": "validation prompts (eval_set: val)"})
    pool_seed: int | None = field(
        default=None,
        metadata={
            "help": "one SFT model and one pair pool for every seed (sampled with this seed); seeds then "
            "vary the D_l/D_u split, the simulated labels, training and evaluation. Unset: per seed (v1)"
        },
    )

    def __post_init__(self):
        errors = []
        if self.n_sft_texts < 0:
            errors.append(f"n_sft_texts must be >= 0, got {self.n_sft_texts}")
        if self.prompt_source != "imdb":
            if self.eval_set is None:
                errors.append("HH-RLHF prompts need eval_set (test or val): one fixed split of the prompts")
            if self.n_sft_texts:
                errors.append("HH-RLHF prompts have no SFT texts: set n_sft_texts to 0")
        for name in (
            "n_prompts",
            "n_test_prompts",
            "prompt_words",
            "max_new_tokens",
            "batch_size",
        ):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.human_flip < 0.5:
            errors.append(f"human_flip must be in [0, 0.5), got {self.human_flip}")
        if self.human_temperature < 0:
            errors.append(f"human_temperature must be >= 0, got {self.human_temperature}")
        if not 0 < self.labeled_frac < 1:
            errors.append(f"labeled_frac must be in (0, 1), got {self.labeled_frac}")
        if self.eval_set not in (None, "test", "val"):
            errors.append(f"eval_set must be test or val, got {self.eval_set!r}")
        if self.n_test_prompts < 3:
            errors.append("n_test_prompts must be >= 3 (three disjoint subsets for the std)")
        check(errors, "sentiment config")


def _imdb_file(cfg: SentimentConfig, split: str) -> Path:
    path = Path(cfg.imdb) / f"{split}.jsonl.gz"
    if not path.exists():
        raise DataError(
            f"IMDb {split} file not found (set sentiment.imdb to the folder holding it)", str(path)
        )
    return path


def sft_rows(cfg: SentimentConfig, seed: int) -> list[dict]:
    """SFT examples from IMDb train: (first ``prompt_words`` words, the next ``sft_response_words``)."""
    path = _imdb_file(cfg, "train")
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            words = clean_review(json.loads(line)["text"]).split()
            if len(words) >= cfg.prompt_words + cfg.sft_response_words:
                texts.append(words)
    rng = random.Random(seed)
    rng.shuffle(texts)
    rows = []
    for words in texts[: cfg.n_sft_texts]:
        prompt = " ".join(words[: cfg.prompt_words])
        response = " " + " ".join(words[cfg.prompt_words : cfg.prompt_words + cfg.sft_response_words])
        rows.append({"prompt": prompt, "chosen": response})
    return rows


EVAL_PROMPT_SEED = 20_260_101  # one fixed order of the evaluation prompts, the same for every seed


def _hh_split(cfg: SentimentConfig) -> dict[str, list[dict]]:
    """HH-RLHF prompts in one fixed order: test first, then validation, then the pool's candidates."""
    order = hh_prompts(cfg.prompt_source, max_words=cfg.max_prompt_words, seed=EVAL_PROMPT_SEED)
    n_eval = cfg.n_test_prompts + cfg.n_val_prompts
    if n_eval + cfg.n_prompts > len(order):
        raise DataError(
            f"n_test_prompts + n_val_prompts + n_prompts = {n_eval + cfg.n_prompts} exceed the "
            f"{len(order)} distinct first turns",
            cfg.prompt_source,
        )
    return {
        "test": order[: cfg.n_test_prompts],
        "val": order[cfg.n_test_prompts : n_eval],
        "pool": order[n_eval:],
    }


def pair_prompts(cfg: SentimentConfig, seed: int) -> list[dict]:
    """The pool's prompts: prefixes of IMDb train reviews, or HH-RLHF first turns outside the
    test and validation prompts."""
    if cfg.prompt_source != "imdb":
        return random.Random(seed + 7919).sample(_hh_split(cfg)["pool"], cfg.n_prompts)
    return imdb_prompts(_imdb_file(cfg, "train"), n=cfg.n_prompts, seed=seed + 7919, words=cfg.prompt_words)


def test_prompts(cfg: SentimentConfig, seed: int) -> list[dict]:
    """The prompts a policy is evaluated on.

    ``eval_set`` unset (v1): a per-seed sample of IMDb test prefixes. ``test``/``val``: one fixed
    order of all IMDb test prefixes, the same for every seed (so methods and seeds are compared on
    the same prompts); the test prompts are its first ``n_test_prompts``, the validation prompts
    its last ``n_val_prompts``: disjoint, whatever either number is.
    """
    if cfg.prompt_source != "imdb":
        return _hh_split(cfg)[cfg.eval_set]
    path = _imdb_file(cfg, "test")
    if cfg.eval_set is None:
        return imdb_prompts(path, n=cfg.n_test_prompts, seed=seed, words=cfg.prompt_words)
    order = imdb_prompts(path, n=None, seed=EVAL_PROMPT_SEED, words=cfg.prompt_words)
    if cfg.n_test_prompts + cfg.n_val_prompts > len(order):
        raise DataError(f"n_test_prompts + n_val_prompts exceed the {len(order)} usable reviews", str(path))
    return order[: cfg.n_test_prompts] if cfg.eval_set == "test" else order[-cfg.n_val_prompts :]


def sample_pairs(
    sft_model: str, cfg: SentimentConfig, seed: int, cache_dir: str | None = None
) -> tuple[list[dict], dict]:
    """Two samples of the SFT model per prompt, scored by the gold; identical samples are dropped."""
    # torch/transformers (~2-8 s) load only when pairs are sampled (a cached pool needs none)
    from cwpo.evaluate.generation import generate_responses

    prompts = pair_prompts(cfg, seed)
    texts = [p["prompt"] for p in prompts]
    gen = {
        "max_new_tokens": cfg.max_new_tokens,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "batch_size": cfg.batch_size,
        "cache_dir": cache_dir,
    }
    a = generate_responses(sft_model, texts, seed=2 * seed + 1, **gen)
    b = generate_responses(sft_model, texts, seed=2 * seed + 2, **gen)
    gold = get_gold(cfg.gold)
    ga, gb = gold(texts, a), gold(texts, b)
    rows, identical, empty = [], 0, 0
    for p, ra, rb, sa, sb in zip(prompts, a, b, ga, gb, strict=True):
        if not ra.strip() or not rb.strip():
            empty += 1
            continue
        if ra == rb:
            identical += 1
            continue
        rows.append(
            {
                "prompt": p["prompt"],
                "response_a": ra,
                "response_b": rb,
                "gold_a": sa,
                "gold_b": sb,
                "prompt_id": p["id"],  # an IMDb review id or an HH-RLHF prompt id
            }
        )
    stats = {
        "prompts": len(prompts),
        "pairs": len(rows),
        "dropped_identical": identical,
        "dropped_empty": empty,
        "gold_tie_pairs": sum(r["gold_a"] == r["gold_b"] for r in rows),
    }
    return rows, stats


def label_and_split(pairs: list[dict], cfg: SentimentConfig, seed: int, out_dir: Path) -> dict:
    """Simulated human labels for every pair, then D_l / D_u (no test split: test prompts are separate).

    Writes ``labeled.jsonl`` (D_l), ``unlabeled.jsonl`` (D_u with the simulated ``human_label``)
    and ``all_human.jsonl`` (D_l ∪ D_u with human labels, for the Human-100% baseline).
    """
    labels = simulate_labels(
        [r["gold_a"] for r in pairs],
        [r["gold_b"] for r in pairs],
        cfg.human_temperature,
        seed,
        cfg.human_flip,
    )
    rows = [{**r, "human_label": lab} for r, lab in zip(pairs, labels, strict=True)]
    labeled_all = [{k: v for k, v in r.items() if k not in ("gold_a", "gold_b")} for r in to_labeled(rows)]
    parts = split_pool(labeled_all, labeled_frac=cfg.labeled_frac, test_frac=0.0, seed=seed)
    write_pairs(out_dir / "labeled.jsonl", parts["labeled"])
    write_pairs(out_dir / "unlabeled.jsonl", parts["unlabeled"])
    write_pairs(out_dir / "all_human.jsonl", parts["labeled"] + to_labeled(parts["unlabeled"]))
    gold_gap = sorted(abs(r["gold_a"] - r["gold_b"]) for r in pairs)
    return {
        "human_temperature": cfg.human_temperature,
        "human_flip": cfg.human_flip,
        "gold_tie_share": sum(g == 0 for g in gold_gap) / len(gold_gap),
        "gold_gap_quartiles": [gold_gap[int(q * (len(gold_gap) - 1))] for q in (0.25, 0.5, 0.75)],
        "human_gold_agreement": gold_agreement(
            labels, [r["gold_a"] for r in pairs], [r["gold_b"] for r in pairs]
        ),
        "labeled": len(parts["labeled"]),
        "unlabeled": len(parts["unlabeled"]),
    }
