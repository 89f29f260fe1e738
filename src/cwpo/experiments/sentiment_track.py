"""The sentiment track (:class:`SentimentTrack`): a grid point's SFT model (or none), pair pool, fixed
evaluation prompts and simulated human labels, and the gold reward its evaluation uses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cwpo.atomic_files import write_jsonl
from cwpo.data.load import check_source, resolve_source
from cwpo.errors import CWPOError
from cwpo.experiments.cache import Artifact, run_stage
from cwpo.hashing import sha256_path


def sentiment_config(recipe):
    """The recipe's ``sentiment`` section as a :class:`cwpo.experiments.sentiment.SentimentConfig`."""
    from cwpo.experiments.sentiment import SentimentConfig

    return SentimentConfig(**recipe.sentiment)


class SentimentTrack:
    """Generated pairs scored by a real gold (IMDb or HH-RLHF prompts): see :mod:`cwpo.experiments.sentiment`.

    Its data stages set on the runner ``files``, ``prompts`` (and ``prompts_art`` for the fixed
    evaluation prompts), ``sft_art`` (the SFT model, trained here) and ``pairs_art`` (the pool).
    """

    name = "sentiment"

    def recipe_errors(self, recipe) -> list[str]:
        hh_prompts = recipe.sentiment.get("prompt_source", "imdb") != "imdb"
        if not recipe.sentiment.get("imdb") and not hh_prompts:
            return ["sentiment.imdb (the IMDb folder) is required for the sentiment track with IMDb prompts"]
        return []

    def input_errors(self, recipe) -> list[str]:

        errors = []
        if recipe.sentiment.get("prompt_source", "imdb") != "imdb":
            try:
                check_source(recipe.sentiment["prompt_source"], "hh-rlhf", "hh", "test")
            except CWPOError as e:
                errors.append(f"sentiment.prompt_source: {e}")
        else:
            for imdb in dict.fromkeys([recipe.sentiment["imdb"], *recipe.grid.get("sentiment.imdb", [])]):
                if not Path(imdb).expanduser().is_dir():
                    errors.append(f"sentiment.imdb: {imdb}: no such folder")
        return errors

    def sft(self, runner, data: Artifact, weak: Artifact | None) -> Artifact:
        return runner.sft_art  # trained with the data stages (on the track's own texts)

    def evaluate_defaults(self, recipe) -> dict:
        cfg = sentiment_config(recipe)
        return {"gold": cfg.gold, "max_new_tokens": cfg.max_new_tokens}

    def data(self, runner) -> Artifact:
        from cwpo.experiments import sentiment as st

        cfg = sentiment_config(runner.r)
        if cfg.prompt_source == "imdb":
            imdb = {s: sha256_path(Path(cfg.imdb) / f"{s}.jsonl.gz") for s in ("train", "test")}
        else:  # HH-RLHF first turns: the same files serve pool and evaluation prompts
            content = sha256_path(resolve_source(cfg.prompt_source))
            imdb = {"train": content, "test": content}
        # HH-RLHF prompts: the pool's candidates are what the test and validation prompts leave
        hh_fields = (
            {}
            if cfg.prompt_source == "imdb"
            else {
                k: getattr(cfg, k)
                for k in ("prompt_source", "max_prompt_words", "n_test_prompts", "n_val_prompts")
            }
        )
        sft_fields = {k: getattr(cfg, k) for k in ("n_sft_texts", "sft_response_words", "prompt_words")}
        # v2 (pool_seed set): one SFT model and one pair pool shared by every seed
        pool_seed = runner.seed if cfg.pool_seed is None else cfg.pool_seed

        def sft_fn(out: Path, work: Path) -> dict:
            rows = st.sft_rows(cfg, pool_seed)
            write_jsonl(work / "sft_texts.jsonl", rows)
            return runner.train_sft(work / "sft_texts.jsonl", out, work, seed=pool_seed)

        def base_fn(out: Path, work: Path) -> dict:  # no SFT: the strong model as it is
            from cwpo.models import resolve_model

            shutil.copytree(resolve_model(runner.r.strong_model), out / "model")
            return {"sft_steps": 0}

        if cfg.n_sft_texts:
            runner.sft_art = run_stage(
                runner.root,
                "sft",
                {"sentiment_sft": sft_fields, "imdb": imdb["train"], **runner.sft_key(pool_seed)},
                {},
                sft_fn,
            )
        else:
            runner.sft_art = run_stage(
                runner.root,
                "sft",
                {"no_sft": runner.r.strong_model},
                {},
                base_fn,
                what="no SFT: the strong model is the reference",
            )
        names = ["n_prompts", "prompt_words", "max_new_tokens", "temperature", "top_p", "gold"]
        if cfg.eval_set is None:  # v1: the per-seed test prompts are written by the pairs stage
            names.insert(1, "n_test_prompts")
        sample_fields = {**{k: getattr(cfg, k) for k in names}, **hh_fields}

        def pairs_fn(out: Path, work: Path) -> dict:
            pairs, stats = st.sample_pairs(str(runner.sft_art.path / "model"), cfg, pool_seed)
            write_jsonl(out / "pairs.jsonl", pairs)
            if cfg.eval_set is None:
                write_jsonl(out / "test_prompts.jsonl", st.test_prompts(cfg, runner.seed))
            return stats

        pairs = run_stage(
            runner.root,
            "pairs",
            {"sample": sample_fields, "seed": pool_seed, "imdb": imdb},
            {"sft": runner.sft_art},
            pairs_fn,
        )
        if cfg.eval_set is None:
            runner.prompts = pairs.path / "test_prompts.jsonl"
        else:  # v2: fixed evaluation prompts, the same for every seed and every pool

            def prompts_fn(out: Path, work: Path) -> dict:
                rows = st.test_prompts(cfg, runner.seed)
                write_jsonl(out / "prompts.jsonl", rows)
                return {"prompts": len(rows)}

            prompt_fields = {
                **{
                    k: getattr(cfg, k)
                    for k in ("eval_set", "n_test_prompts", "n_val_prompts", "prompt_words")
                },
                **hh_fields,
            }
            prompts = run_stage(
                runner.root, "prompts", {"prompts": prompt_fields, "imdb": imdb["test"]}, {}, prompts_fn
            )
            runner.prompts = prompts.path / "prompts.jsonl"
            runner.prompts_art = prompts  # an input of every evaluation (its key changes with the prompts)

        def labels_fn(out: Path, work: Path) -> dict:
            rows = [
                json.loads(x)
                for x in (pairs.path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
                if x
            ]
            return st.label_and_split(rows, cfg, runner.seed, out)

        label_fields = {
            **({"human_flip": cfg.human_flip} if cfg.human_flip else {}),  # v1 keys unchanged
            "human_temperature": cfg.human_temperature,
            "labeled_frac": cfg.labeled_frac,
            "seed": runner.seed,
        }
        art = run_stage(runner.root, "labels", label_fields, {"pairs": pairs}, labels_fn)
        runner.files = {
            "labeled": art.path / "labeled.jsonl",
            "unlabeled": art.path / "unlabeled.jsonl",
            "all_human": art.path / "all_human.jsonl",
            "test": None,
        }
        runner.pairs_art = pairs
        return art
