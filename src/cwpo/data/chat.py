"""Chat data: the one place where a prompt becomes chat messages and a chat model's prompt text.

A prompt is a text (one user turn) or already a list of ``{"role", "content"}`` messages. With
``chat_template`` on, ``cwpo sft`` and ``cwpo align`` hand TRL *conversational* rows (the prompt's
messages, the response as one assistant turn), so TRL applies the tokenizer's chat template; the
generation of ``cwpo evaluate --chat-template`` renders the same messages with the same template
and ``add_generation_prompt``, so training and generation feed the model the same prompt tokens
(``tests/data/test_chat.py`` checks it on SmolLM2's real template).
"""

from __future__ import annotations

from cwpo.errors import ConfigError


def prompt_messages(prompt: str | list[dict]) -> list[dict]:
    """The chat messages of a prompt: a list of messages as is, a text as one user turn."""
    if isinstance(prompt, list):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    return [{"role": "user", "content": prompt}]


def assistant_turn(response: str) -> list[dict]:
    """A response as one assistant turn (the leading space of a plain-text continuation dropped)."""
    return [{"role": "assistant", "content": response.strip()}]


def conversational_pair(row: dict) -> dict:
    """A preference row for TRL's conversational path (other columns, e.g. ``weight``, kept)."""
    return {
        **row,
        "prompt": prompt_messages(row["prompt"]),
        "chosen": assistant_turn(row["chosen"]),
        "rejected": assistant_turn(row["rejected"]),
    }


def conversational_demo(row: dict) -> dict:
    """A (prompt, completion) SFT row for TRL's conversational path."""
    return {**row, "prompt": prompt_messages(row["prompt"]), "completion": assistant_turn(row["completion"])}


def require_chat_template(tokenizer, model_ref: str) -> None:
    """One line when ``chat_template`` is asked of a tokenizer that has none."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"chat_template: the tokenizer of {model_ref} has no chat template (a base model?); "
            "set chat_template: false"
        )


def chat_prompt_text(tokenizer, prompt: str | list[dict]) -> str:
    """The prompt as the chat model sees it before its answer (``add_generation_prompt``)."""
    return tokenizer.apply_chat_template(prompt_messages(prompt), tokenize=False, add_generation_prompt=True)
