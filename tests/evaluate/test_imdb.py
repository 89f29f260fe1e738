"""IMDb review prefixes as prompts."""

import gzip
import json

import pytest

from cwpo.data.imdb import clean_review, imdb_prompts
from cwpo.errors import DataError


def test_prefixes_from_a_small_file(tmp_path):
    path = tmp_path / "mini.jsonl.gz"
    rows = [
        {"id": 7, "text": "Great<br /><br />movie, I really liked every single minute of it."},
        {"id": 8, "text": "Too short."},
        {"id": 9, "text": "One two three four five six seven eight nine ten."},
    ]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    assert imdb_prompts(path, seed=None, words=4) == [
        {"id": 7, "prompt": "Great movie, I really"},
        {"id": 9, "prompt": "One two three four"},
    ]
    assert sorted(r["id"] for r in imdb_prompts(path, n=2, seed=3, words=4)) == [7, 9]
    with pytest.raises(DataError, match="asked for 3 prompts but the file has only 2"):
        imdb_prompts(path, n=3, words=4)
    with pytest.raises(DataError, match="IMDb file not found"):
        imdb_prompts(tmp_path / "nope.jsonl.gz")
    assert clean_review("a<br/>b<BR />c") == "a b c"


def test_real_imdb_test_split_is_seeded(imdb_dir):
    a = imdb_prompts(imdb_dir / "test.jsonl.gz", n=5, seed=0, words=8)
    assert a == imdb_prompts(imdb_dir, n=5, seed=0, words=8)
    assert a != imdb_prompts(imdb_dir, n=5, seed=1, words=8)
    assert all(len(r["prompt"].split()) == 8 and "<br" not in r["prompt"] for r in a)
    assert len({r["id"] for r in a}) == 5
