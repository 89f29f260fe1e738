"""The sentiment track's data stages of a grid point: SFT (or none), the pair pool, the fixed
evaluation prompts and the simulated human labels (a mixin of :class:`cwpo.experiments.point_runner.PointRunner`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cwpo.atomic_files import write_jsonl
from cwpo.experiments.cache import Artifact, run_stage
from cwpo.hashing import sha256_path


class SentimentStages:
    """Needs from the runner: ``root``, ``seed``, ``r`` (the recipe), ``_sft_key``, ``_train_sft``."""

    def _sentiment_cfg(self):
        from cwpo.experiments.sentiment import SentimentConfig

        return SentimentConfig(**self.r.sentiment)

    def _sentiment_data(self) -> Artifact:
        from cwpo.data.load import resolve_source
        from cwpo.experiments import sentiment as st

        cfg = self._sentiment_cfg()
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
        pool_seed = self.seed if cfg.pool_seed is None else cfg.pool_seed

        def sft_fn(out: Path, work: Path) -> dict:
            rows = st.sft_rows(cfg, pool_seed)
            write_jsonl(work / "sft_texts.jsonl", rows)
            return self._train_sft(work / "sft_texts.jsonl", out, work, seed=pool_seed)

        def base_fn(out: Path, work: Path) -> dict:  # no SFT: the strong model as it is
            from cwpo.models import resolve_model

            shutil.copytree(resolve_model(self.r.strong_model), out / "model")
            return {"sft_steps": 0}

        if cfg.n_sft_texts:
            self.sft_art = run_stage(
                self.root,
                "sft",
                {"sentiment_sft": sft_fields, "imdb": imdb["train"], **self._sft_key(pool_seed)},
                {},
                sft_fn,
            )
        else:
            self.sft_art = run_stage(
                self.root,
                "sft",
                {"no_sft": self.r.strong_model},
                {},
                base_fn,
                what="no SFT: the strong model is the reference",
            )
        names = ["n_prompts", "prompt_words", "max_new_tokens", "temperature", "top_p", "gold"]
        if cfg.eval_set is None:  # v1: the per-seed test prompts are written by the pairs stage
            names.insert(1, "n_test_prompts")
        sample_fields = {**{k: getattr(cfg, k) for k in names}, **hh_fields}

        def pairs_fn(out: Path, work: Path) -> dict:
            pairs, stats = st.sample_pairs(str(self.sft_art.path / "model"), cfg, pool_seed)
            write_jsonl(out / "pairs.jsonl", pairs)
            if cfg.eval_set is None:
                write_jsonl(out / "test_prompts.jsonl", st.test_prompts(cfg, self.seed))
            return stats

        pairs = run_stage(
            self.root,
            "pairs",
            {"sample": sample_fields, "seed": pool_seed, "imdb": imdb},
            {"sft": self.sft_art},
            pairs_fn,
        )
        if cfg.eval_set is None:
            self.prompts = pairs.path / "test_prompts.jsonl"
        else:  # v2: fixed evaluation prompts, the same for every seed and every pool

            def prompts_fn(out: Path, work: Path) -> dict:
                rows = st.test_prompts(cfg, self.seed)
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
                self.root, "prompts", {"prompts": prompt_fields, "imdb": imdb["test"]}, {}, prompts_fn
            )
            self.prompts = prompts.path / "prompts.jsonl"
            self.prompts_art = prompts  # an input of every evaluation (its key changes with the prompts)

        def labels_fn(out: Path, work: Path) -> dict:
            rows = [
                json.loads(x)
                for x in (pairs.path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
                if x
            ]
            return st.label_and_split(rows, cfg, self.seed, out)

        label_fields = {
            **({"human_flip": cfg.human_flip} if cfg.human_flip else {}),  # v1 keys unchanged
            "human_temperature": cfg.human_temperature,
            "labeled_frac": cfg.labeled_frac,
            "seed": self.seed,
        }
        art = run_stage(self.root, "labels", label_fields, {"pairs": pairs}, labels_fn)
        self.files = {
            "labeled": art.path / "labeled.jsonl",
            "unlabeled": art.path / "unlabeled.jsonl",
            "all_human": art.path / "all_human.jsonl",
            "test": None,
        }
        self.pairs_art = pairs
        return art
