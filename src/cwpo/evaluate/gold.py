"""Gold reward functions: ``get_gold(spec)`` -> ``callable(prompts, responses) -> list[float]``.

Specs:

* ``vader``: the VADER sentiment lexicon (``vaderSentiment``), the compound score in [-1, 1] of
  the *response* alone (the IMDb controlled-sentiment track: a positive continuation wins).
* ``afinn``: the AFINN word list (``afinn``), the summed valence of the response's words: a second
  sentiment scorer, independent of VADER's rules, to check that a policy tuned on VADER-derived
  labels did not learn VADER's quirks (reward hacking).
* a local folder or hub id of a sequence-classification reward model (the paper's
  Skywork-Reward-V2, OpenAssistant deberta-v3-large-v2, ...): batched, fp32, no gradient. With
  one output the score is that logit; with two it is logit[1] - logit[0] (the log-odds of label 1,
  e.g. "positive" for a sentiment classifier). How (prompt, response) becomes the model's input is
  ``text_format``: ``chat`` (the tokenizer's chat template over the HH turns), ``pair`` (a text
  pair, as the OpenAssistant RMs expect) or ``concat`` (prompt + response as raw text);
  ``auto`` picks ``chat`` when the tokenizer has a chat template, else ``pair``.
* ``module:function``: any importable callable with the same signature (user-supplied gold).
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from cwpo.console import progress as progress_bar
from cwpo.errors import ConfigError, ModelNotFoundError

GoldFn = Callable[[Sequence[str], Sequence[str]], list]

ALTERNATIVES = (
    "'vader' (VADER sentiment of the response, offline), 'afinn' (AFINN word valence, offline), a local folder of a sequence-classification "
    "reward model, a hub id such as Skywork/Skywork-Reward-V2-Llama-3.1-8B (needs the hub), or "
    "'module:function' (a callable (prompts, responses) -> list of floats)"
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TURN = re.compile(r"\n\n(Human|Assistant):")


def _check_scores(scores, n: int, spec: str) -> list[float]:
    try:
        out = [float(s) for s in scores]
    except (TypeError, ValueError) as e:
        raise ConfigError(f"gold reward {spec!r} returned something other than numbers: {e}") from None
    if len(out) != n:
        raise ConfigError(f"gold reward {spec!r} returned {len(out)} scores for {n} responses")
    bad = [i for i, s in enumerate(out) if not math.isfinite(s)]
    if bad:
        raise ConfigError(
            f"gold reward {spec!r} returned a non-finite score for item {bad[0]}: {out[bad[0]]}"
        )
    return out


class VaderGold:
    """VADER compound sentiment of each response (the prompt is ignored)."""

    name = "vader"

    def __init__(self):
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError:
            raise ConfigError(
                "gold 'vader' needs the vaderSentiment package: pip install vaderSentiment"
            ) from None
        self._analyzer = SentimentIntensityAnalyzer()

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return [float(self._analyzer.polarity_scores(r)["compound"]) for r in responses]

    def describe(self) -> dict:
        return {"gold": "vader", "kind": "lexicon", "package": "vaderSentiment"}


class AfinnGold:
    """AFINN valence of each response (the sum over its words; the prompt is ignored)."""

    name = "afinn"

    def __init__(self):
        try:
            from afinn import Afinn
        except ImportError:
            raise ConfigError("gold 'afinn' needs the afinn package: pip install afinn") from None
        self._afinn = Afinn()

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return [float(self._afinn.score(r)) for r in responses]

    def describe(self) -> dict:
        return {"gold": "afinn", "kind": "lexicon", "package": "afinn"}


def hh_messages(prompt: str, response: str) -> list[dict]:
    """Turn an HH-style transcript (``\\n\\nHuman: ...\\n\\nAssistant:``) plus a response into chat messages.

    A prompt without those markers becomes a single user message.
    """
    parts = _TURN.split("\n\n" + prompt.lstrip("\n"))
    messages: list[dict] = []
    if len(parts) == 1:
        messages.append({"role": "user", "content": prompt.strip()})
    else:
        if parts[0].strip():
            messages.append({"role": "user", "content": parts[0].strip()})
        for role, text in zip(parts[1::2], parts[2::2], strict=True):
            if text.strip():
                messages.append({"role": "user" if role == "Human" else "assistant", "content": text.strip()})
    messages.append({"role": "assistant", "content": response.strip()})
    return messages


class RewardModelGold:
    """A sequence-classification reward model scoring (prompt, response), batched, longest first."""

    def __init__(self, ref: str, *, batch_size: int = 16, max_length: int = 512, text_format: str = "auto"):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from cwpo.models import resolve_model
        from cwpo.models.registry import load_error_hint

        if text_format not in ("auto", "chat", "pair", "concat"):
            raise ConfigError(f"gold text_format must be auto, chat, pair or concat, got {text_format!r}")
        self.name, self.batch_size, self.max_length = ref, batch_size, max_length
        try:
            path = resolve_model(ref)
        except ModelNotFoundError as e:
            raise ModelNotFoundError(f"gold reward model: {e}. Other gold choices: {ALTERNATIVES}") from None
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
        except (OSError, ValueError) as e:
            err = load_error_hint(ref, e)
            raise ModelNotFoundError(f"gold reward model: {err} Other gold choices: {ALTERNATIVES}") from None
        self.model.eval()
        self.tokenizer.truncation_side = "left"  # keep the response, which is at the end
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        n_labels = self.model.config.num_labels
        if n_labels not in (1, 2):
            raise ConfigError(
                f"gold reward model {ref!r} has {n_labels} output labels; expected 1 (a reward) or 2"
            )
        if text_format == "auto":
            text_format = "chat" if getattr(self.tokenizer, "chat_template", None) else "pair"
        self.text_format = text_format

    def _encode(self, prompts: Sequence[str], responses: Sequence[str]):
        tok = self.tokenizer
        kwargs = {"padding": True, "truncation": True, "max_length": self.max_length, "return_tensors": "pt"}
        if self.text_format == "pair":
            return tok(list(prompts), list(responses), **kwargs)
        if self.text_format == "chat":
            texts = [
                tok.apply_chat_template(hh_messages(p, r), tokenize=False)
                for p, r in zip(prompts, responses, strict=True)
            ]
            return tok(texts, add_special_tokens=False, **kwargs)
        return tok([p + r for p, r in zip(prompts, responses, strict=True)], **kwargs)

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        import torch

        order = sorted(range(len(responses)), key=lambda i: -(len(prompts[i]) + len(responses[i])))
        scores = [0.0] * len(responses)
        with (
            torch.inference_mode(),
            progress_bar(total=len(order), desc="gold", unit="resp", disable=len(order) < 64) as bar,
        ):
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self._encode([prompts[i] for i in idx], [responses[i] for i in idx])
                logits = self.model(**batch).logits.float()
                values = logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]
                for i, v in zip(idx, values.tolist(), strict=True):
                    scores[i] = v
                bar.update(len(idx))
        return scores

    def describe(self) -> dict:
        return {
            "gold": self.name,
            "kind": "reward-model",
            "text_format": self.text_format,
            "max_length": self.max_length,
        }


class CallableGold:
    """A user function ``module:function`` called as ``fn(prompts, responses)``."""

    def __init__(self, spec: str):
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ConfigError(
                f"gold {spec!r}: cannot import module {module_name!r} ({e}). Choices: {ALTERNATIVES}"
            ) from None
        fn = module
        for part in attr.split("."):
            fn = getattr(fn, part, None)
            if fn is None:
                raise ConfigError(f"gold {spec!r}: module {module_name!r} has no attribute {attr!r}")
        if not callable(fn):
            raise ConfigError(f"gold {spec!r}: {attr!r} is not callable")
        self.name, self._fn = spec, fn

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return self._fn(list(prompts), list(responses))

    def describe(self) -> dict:
        return {"gold": self.name, "kind": "callable"}


class _Checked:
    """Wrap a gold function so every result is validated (length, numbers, finite)."""

    def __init__(self, inner, spec: str):
        self.inner, self.spec, self.name = inner, spec, spec

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not responses:
            return []
        return _check_scores(self.inner(prompts, responses), len(responses), self.spec)

    def describe(self) -> dict:
        return self.inner.describe()


def get_gold(spec: str, *, batch_size: int = 16, max_length: int = 512, text_format: str = "auto") -> GoldFn:
    """Return the gold reward named by ``spec`` (see the module docstring)."""
    spec = str(spec).strip()
    if not spec:
        raise ConfigError(f"no gold reward given; choose {ALTERNATIVES}")
    if spec.lower() == "vader":
        return _Checked(VaderGold(), "vader")
    if spec.lower() == "afinn":
        return _Checked(AfinnGold(), "afinn")
    path = Path(spec).expanduser()
    if path.exists():
        return _Checked(
            RewardModelGold(str(path), batch_size=batch_size, max_length=max_length, text_format=text_format),
            spec,
        )
    looks_like_path = spec.startswith((".", "~", "/")) or "\\" in spec or spec.count("/") > 1
    if looks_like_path:
        raise ModelNotFoundError(f"gold reward model path not found: {spec}. Choose {ALTERNATIVES}")
    if ":" in spec:
        return _Checked(CallableGold(spec), spec)
    if _HUB_ID.match(spec):
        return _Checked(
            RewardModelGold(spec, batch_size=batch_size, max_length=max_length, text_format=text_format), spec
        )
    raise ConfigError(f"unknown gold reward {spec!r}; choose {ALTERNATIVES}")
