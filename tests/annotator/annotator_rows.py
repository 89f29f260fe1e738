"""Labelled pairs in HH-RLHF's layout for the annotator tests (a helpful and a curt answer)."""


def hh_rows(n: int, prompt: str = "question number {i}, please help?", ids: bool = False) -> list[dict]:
    return [
        {
            "prompt": "\n\nHuman: " + prompt.format(i=i) + "\n\nAssistant:",
            "chosen": f" Sure, here is a kind and helpful answer about {i}.",
            "rejected": f" No {i}.",
            **({"id": i} if ids else {}),
        }
        for i in range(n)
    ]
