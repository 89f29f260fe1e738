"""Chat data: the one place where a prompt becomes chat messages and a chat model's prompt text.

A prompt is a text (one user turn) or already a list of ``{"role", "content"}`` messages. With
``chat_template`` on, ``cwpo sft`` and ``cwpo align`` hand TRL *conversational* rows (the prompt's
messages, the response as one assistant turn), so TRL applies the tokenizer's chat template; the
generation of ``cwpo evaluate --chat-template`` renders the same messages with the same template
and ``add_generation_prompt``, so training and generation feed the model the same prompt tokens
(``tests/data/test_chat.py`` checks it on SmolLM2's real template).

A multi-turn conversation (UltraFeedback's layout: chosen and rejected are the whole chat) keeps
its turns in a ``prompt_messages`` column next to the text ``prompt``, which holds the same turns
as an HH-style transcript (``\n\nHuman: ...\n\nAssistant:``) for the stages that read text (the
length filter, BERT-style annotators, plain-text training). A one-user-turn prompt has no such
column: its messages are its text, and its rows stay byte-identical to a plain-text data set's.
"""

from __future__ import annotations

from cwpo.errors import ConfigError

PROMPT_MESSAGES = "prompt_messages"
ROLES = ("system", "user", "assistant")
_SPEAKER = {"system": "System", "user": "Human", "assistant": "Assistant"}


def message_problem(messages) -> str | None:
    """Why ``messages`` is not a list of ``{"role", "content"}`` chat messages (``None``: it is)."""
    if not isinstance(messages, list) or not messages:
        return "must be a non-empty list of chat messages"
    for k, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            return f"message {k} must be {{'role': {'/'.join(ROLES)}, 'content': text}}, got {m!r:.80}"
    return None


def transcript(messages: list[dict]) -> str:
    """A conversation as an HH-style text prompt ending in ``\n\nAssistant:`` (one user turn: its text)."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    turns = "".join(f"\n\n{_SPEAKER[m['role']]}: {m['content'].strip()}" for m in messages)
    return turns + "\n\nAssistant:"


def row_prompt(row: dict) -> str | list[dict]:
    """What a chat model is given of a row: its ``prompt_messages`` if it has them, else its prompt."""
    return row.get(PROMPT_MESSAGES) or row["prompt"]


def with_messages(row: dict) -> dict:
    """The row's prompt: ``{"prompt": ...}``, with its ``prompt_messages`` when it has them."""
    kept = {"prompt": row["prompt"]}
    if row.get(PROMPT_MESSAGES):
        kept[PROMPT_MESSAGES] = row[PROMPT_MESSAGES]
    return kept


def without_messages(row: dict) -> dict:
    """The row without ``prompt_messages`` (plain-text training reads the transcript ``prompt``)."""
    return {k: v for k, v in row.items() if k != PROMPT_MESSAGES}


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
        **without_messages(row),
        "prompt": prompt_messages(row_prompt(row)),
        "chosen": assistant_turn(row["chosen"]),
        "rejected": assistant_turn(row["rejected"]),
    }


def conversational_demo(row: dict) -> dict:
    """A (prompt, completion) SFT row for TRL's conversational path."""
    return {
        **without_messages(row),
        "prompt": prompt_messages(row_prompt(row)),
        "completion": assistant_turn(row["completion"]),
    }


def require_chat_template(tokenizer, model_ref: str) -> None:
    """One line when ``chat_template`` is asked of a tokenizer that has none."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"chat_template: the tokenizer of {model_ref} has no chat template (a base model?); "
            "set chat_template: false"
        )


def chat_pair_texts(tokenizer, prompt: str | list[dict], response: str) -> tuple[str, str]:
    """(prompt, response) texts as TRL's conversational DPO splits them: the template over the
    prompt and the response turn, cut after the prompt's ``add_generation_prompt`` text (so the
    response ends with the template's end-of-turn, as the model was trained)."""
    head = chat_prompt_text(tokenizer, prompt)
    whole = tokenizer.apply_chat_template(prompt_messages(prompt) + assistant_turn(response), tokenize=False)
    return head, whole[len(head) :] if whole.startswith(head) else response.strip()


def chat_prompt_text(tokenizer, prompt: str | list[dict]) -> str:
    """The prompt as the chat model sees it before its answer (``add_generation_prompt``)."""
    return tokenizer.apply_chat_template(prompt_messages(prompt), tokenize=False, add_generation_prompt=True)
