"""The evaluation stage end to end: tiny models (fast) and the real SmolLM2 against itself with vader."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cwpo.atomic_files import read_json, write_jsonl
from cwpo.cli.main import main
from cwpo.data.imdb import imdb_prompts
from cwpo.data.schema import write_pairs
from cwpo.errors import ConfigError, DataError
from cwpo.evaluate.evaluate import EvalConfig, evaluate, read_prompt_rows
from cwpo.evaluate.generation import generate_responses


@pytest.fixture
def prompt_file(tmp_path, labeled_rows):
    path = tmp_path / "prompts.jsonl"
    write_jsonl(path, labeled_rows[:5])
    return path


def test_tiny_end_to_end_with_gold_pairs_and_judge(
    tiny_causal_lm_dir, prompt_file, labeled_rows, tmp_path, fake_judge
):
    pairs = tmp_path / "heldout.jsonl"
    write_pairs(pairs, labeled_rows[:4])
    cfg = EvalConfig(
        policy=tiny_causal_lm_dir, reference=tiny_causal_lm_dir, prompts=str(prompt_file), gold="vader",
        output=str(tmp_path / "out"), pairs=str(pairs), judge_url=fake_judge.url, judge_model="fake",
        judge_key="sk-secret", judge_rate_limit=1000.0, max_new_tokens=5, batch_size=4, n_boot=100,
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    s = evaluate(cfg, progress=False)
    assert s["gra"]["gra"] == 0.5 and s["gra"]["ties"] == 5
    assert s["generation"]["reference"]["cache_hit"] is True  # same model + settings + seed
    assert s["preference_accuracy"]["accuracy"] == 0.5 and s["preference_accuracy"]["ties"] == 4
    assert s["judge"]["n"] + s["judge"]["unparsed"] == 5 and len(fake_judge.requests) == 5
    out = tmp_path / "out"
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(r["policy_response"] == r["reference_response"] for r in rows)
    assert {"prompt", "gold_policy", "gold_reference", "outcome", "judge"} <= set(rows[0])
    assert read_json(out / "summary.json")["gra"]["gra"] == 0.5
    assert "| GRA (vader) | 50.0 |" in (out / "summary.md").read_text()
    manifest = read_json(out / "manifest.json")
    assert manifest["stage"] == "evaluate" and manifest["config"]["judge_key"] == "***"
    assert "sk-secret" not in (out / "manifest.json").read_text()
    assert len((out / "preference_rows.jsonl").read_text().splitlines()) == 4


def _one_word_model(base_dir: str, word: str, out) -> str:
    """The tiny model rewired to write ``word`` after any text: a large constant hidden
    dimension (every token's embedding has 30 in dimension 0) read by an untied LM head that
    only ``word``'s row can see (logit about 4·10 against 0 for every other token)."""
    tok = AutoTokenizer.from_pretrained(base_dir)
    (token,) = tok(word, add_special_tokens=False)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    model.config.tie_word_embeddings = False
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 30.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        head = torch.zeros_like(model.lm_head.weight)
        head[token, 0] = 10.0
        model.lm_head.weight = torch.nn.Parameter(head)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def test_policy_better_than_reference_and_swapped(tiny_causal_lm_dir, prompt_file, tmp_path):
    """A policy that always writes " wonderful" against a reference that always writes " awful":
    vader prefers the policy on every prompt (GRA 1); swapping the two gives GRA 0."""
    good = _one_word_model(tiny_causal_lm_dir, " wonderful", tmp_path / "good")
    bad = _one_word_model(tiny_causal_lm_dir, " awful", tmp_path / "bad")
    results = {}
    for name, policy, reference in (("good", good, bad), ("swapped", bad, good)):
        cfg = EvalConfig(
            policy=policy, reference=reference, prompts=str(prompt_file), gold="vader",
            output=str(tmp_path / f"out-{name}"), max_new_tokens=4, batch_size=5, n_boot=50,
            cache_dir=str(tmp_path / "cache"),
        )  # fmt: skip
        results[name] = evaluate(cfg, progress=False)
        rows = [json.loads(x) for x in (tmp_path / f"out-{name}" / "rows.jsonl").read_text().splitlines()]
        words = {"good": (" wonderful", " awful"), "swapped": (" awful", " wonderful")}[name]
        assert all(r["policy_response"] == words[0] * 4 for r in rows), rows[0]
        assert all(r["reference_response"] == words[1] * 4 for r in rows), rows[0]
    good_gra, swapped_gra = results["good"]["gra"], results["swapped"]["gra"]
    assert (good_gra["gra"], good_gra["wins"], good_gra["ties"]) == (1.0, 5, 0)
    assert (swapped_gra["gra"], swapped_gra["losses"], swapped_gra["ties"]) == (0.0, 5, 0)


def test_cli_runs_and_reports_errors_in_one_line(tiny_causal_lm_dir, prompt_file, tmp_path, capsys):
    base = [
        "evaluate",
        "--policy",
        tiny_causal_lm_dir,
        "--reference",
        tiny_causal_lm_dir,
        "--prompts",
        str(prompt_file),
    ]
    opts = [
        "--output",
        str(tmp_path / "o"),
        "--max-new-tokens",
        "4",
        "--num-prompts",
        "3",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert main([*base, *opts, "--gold", "vader", "--n-boot", "50"]) == 0
    assert "| GRA (vader) | 50.0 |" in capsys.readouterr().out
    assert read_json(tmp_path / "o" / "summary.json")["n_prompts"] == 3
    assert main([*base, *opts, "--gold", "no-such-gold", "--overwrite", "true"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cwpo evaluate: error: unknown gold reward 'no-such-gold'") and "\n" not in err
    assert read_json(tmp_path / "o" / "summary.json")["n_prompts"] == 3  # the failed run lost nothing


def test_config_reports_every_problem_at_once(tmp_path):
    with pytest.raises(
        ConfigError, match=r"prompts file not found.*nothing to measure.*beta must be > 0.*top_p"
    ):
        EvalConfig(
            policy="p", reference="r", prompts=str(tmp_path / "none.jsonl"), output="o", beta=0, top_p=2
        )


def test_prompt_file_errors_name_file_and_row(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl, row 2: needs a non-empty text column 'prompt'"):
        read_prompt_rows(bad)
    assert read_prompt_rows(bad, n=1) == [{"prompt": "ok"}]


def test_smollm2_against_itself_with_vader_is_exactly_half(imdb_dir, tmp_path):
    """Identical model, settings and seeds -> GRA exactly 0.5, all ties."""
    prompts = imdb_prompts(imdb_dir / "test.jsonl.gz", n=6, seed=0, words=8)
    write_jsonl(tmp_path / "imdb.jsonl", prompts)
    cfg = EvalConfig(
        policy="smollm2-135m-instruct", reference="smollm2-135m-instruct", prompts=str(tmp_path / "imdb.jsonl"),
        gold="vader", output=str(tmp_path / "out"), max_new_tokens=16, temperature=1.0, seed=0, batch_size=6,
        n_boot=200, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    s = evaluate(cfg, progress=False)
    assert s["gra"]["gra"] == 0.5 and s["gra"]["ties"] == 6 and s["gra"]["wins"] == s["gra"]["losses"] == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "rows.jsonl").read_text().splitlines()]
    assert all(r["outcome"] == "tie" and r["gold_policy"] == r["gold_reference"] for r in rows)
    # generating again from scratch (no cache) gives the very same text: the tie is not a cache artifact
    fresh = generate_responses(
        "smollm2-135m-instruct", [p["prompt"] for p in prompts], max_new_tokens=16, temperature=1.0, seed=0,
        batch_size=6, cache_dir=tmp_path / "fresh", progress=False,
    )  # fmt: skip
    assert fresh == [r["policy_response"] for r in rows]
    assert sum(len(t.split()) for t in fresh) > 6  # the model really wrote continuations


def test_preference_accuracy_alone_generates_nothing(
    tiny_causal_lm_dir, prompt_file, labeled_rows, tmp_path, monkeypatch
):
    import cwpo.evaluate.generation as generation

    def forbidden(*args, **kwargs):
        raise AssertionError("generation is not needed for preference accuracy")

    monkeypatch.setattr(generation, "generate_responses", forbidden)
    pairs = tmp_path / "heldout.jsonl"
    write_pairs(pairs, labeled_rows[:4])
    cfg = EvalConfig(
        policy=tiny_causal_lm_dir,
        reference=tiny_causal_lm_dir,
        prompts=str(pairs),
        pairs=str(pairs),
        output=str(tmp_path / "out"),
        n_boot=50,
    )
    s = evaluate(cfg, progress=False)
    assert s["preference_accuracy"]["n"] == 4 and "generation_s" not in s["timings"]
