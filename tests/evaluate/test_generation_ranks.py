"""Generation in ``cwpo evaluate`` on two accelerate ranks: one output, byte-identical to one process."""

import json
import sys
from pathlib import Path

from cwpo.evaluate.evaluate import EvalConfig, evaluate

PROMPTS = [f"Review number {i}: the movie was" for i in range(9)] + ["Hello"]


def _args(model: str, prompts: Path, out: Path, cache: Path) -> dict:
    return {
        "policy": model,
        "reference": model,
        "prompts": str(prompts),
        "output": str(out),
        "gold": "vader",
        "max_new_tokens": 5,
        "batch_size": 2,  # 5 batches: rank 0 samples 3, rank 1 samples 2
        "dtype": "float32",
        "n_boot": 20,
        "cache_dir": str(cache),
    }


def test_two_ranks_write_the_one_process_output(tiny_causal_lm_dir, tmp_path, launch_two_ranks):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    one = _args(tiny_causal_lm_dir, prompts, tmp_path / "one", tmp_path / "cache-one")
    evaluate(EvalConfig(**one), progress=False)

    two = _args(tiny_causal_lm_dir, prompts, tmp_path / "two", tmp_path / "cache-two")
    cmd = [str(Path(sys.executable).parent / "cwpo"), "evaluate"]
    for key, value in two.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = launch_two_ranks(cmd, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote ") == 1  # rank 0 alone reports and writes

    assert (tmp_path / "two" / "rows.jsonl").read_bytes() == (tmp_path / "one" / "rows.jsonl").read_bytes()
    [gen_one] = (tmp_path / "cache-one" / "generations").glob("*.jsonl")
    [gen_two] = (tmp_path / "cache-two" / "generations").glob("*.jsonl")  # no partial logs left
    assert gen_two.name == gen_one.name and gen_two.read_bytes() == gen_one.read_bytes()
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    policy = summary["generation"]["policy"]
    assert policy["processes"] == 2 and 0 < policy["new_tokens"] < 5 * len(PROMPTS)  # rank 0's share
    assert summary["generation"]["reference"]["cache_hit"] is True  # the same model: sampled once
