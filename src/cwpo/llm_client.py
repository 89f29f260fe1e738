"""A small, robust OpenAI-compatible chat-completions client (standard library only).

Retries with exponential backoff on timeouts, connection errors (a server restarting, a connection
dropped mid-answer), HTTP 408/429/5xx and malformed bodies (``Retry-After`` honoured); each retry is
announced on the terminal, and when the budget (``timeout`` per attempt, ``max_retries`` retries)
is spent, :class:`JudgeError` says so in one line. A minimum interval between requests (rate
limit), and answers cached on disk by the content hash of the request (model, messages, sampling
settings), so a re-run or a resumed run asks nothing twice. The API key is sent only in the
``Authorization`` header: it is never cached, logged or written.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cwpo.atomic_files import read_json, write_json
from cwpo.errors import ConfigError, CWPOError
from cwpo.hashing import hash_config

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
PROBE_TIMEOUT = 10.0  # seconds the reachability check waits for any answer


class JudgeError(CWPOError):
    """The judge endpoint failed (after retries) or refused the request."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def chat_url(url: str) -> str:
    """Accept a base URL (``http://host/v1``) or the full ``.../chat/completions`` endpoint."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def _say(message: str) -> None:
    """One line on stderr that does not break a progress bar; the same line in the run's log file."""
    logging.getLogger("cwpo.judge").warning(message, extra={"file_only": True})
    try:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)
    except ImportError:  # pragma: no cover
        print(message, file=sys.stderr)


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class JudgeClient:
    """An OpenAI-compatible chat client with retries, a rate limit and an answer cache.

    ``timeout`` is in seconds per attempt; ``max_retries`` counts retries after the first attempt;
    ``rate_limit`` is in requests per second (None: no limit); ``max_tokens`` caps the judge's
    answer; ``flags`` is the prefix of the CLI flags its messages name (``--judge-timeout``). ``notify`` receives the one-line retry announcements (default: stderr); ``sleep`` is
    injectable for tests.
    """

    def __init__(
        self,
        url: str | None = None,
        model: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        rate_limit: float | None = 2.0,
        temperature: float = 0.0,
        max_tokens: int = 64,
        cache_dir: str | os.PathLike | None = None,
        sleep: Callable[[float], None] = time.sleep,
        notify: Callable[[str], None] | None = _say,
        flags: str = "judge",
    ):
        url = url or os.environ.get("CWPO_JUDGE_URL")
        model = model or os.environ.get("CWPO_JUDGE_MODEL")
        missing = [
            n
            for n, v in (
                ("URL (--judge-url or CWPO_JUDGE_URL)", url),
                ("model (--judge-model or CWPO_JUDGE_MODEL)", model),
            )
            if not v
        ]
        if missing:
            raise ConfigError(f"the LLM judge needs a {' and a '.join(missing)}")
        if rate_limit is not None and rate_limit <= 0:
            raise ConfigError(f"judge rate_limit must be > 0 requests/s or None, got {rate_limit}")
        if timeout <= 0:
            raise ConfigError(f"judge timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ConfigError(f"judge retries must be >= 0, got {max_retries}")
        if max_tokens < 1:
            raise ConfigError(f"judge max_tokens must be >= 1, got {max_tokens}")
        self.url, self.model = chat_url(url), model
        self.key = key if key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.min_interval = 0.0 if rate_limit is None else 1.0 / rate_limit
        self.temperature, self.max_tokens = temperature, max_tokens
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.sleep, self.notify = sleep, notify
        self.flags = flags  # the CLI flags' prefix the error messages name (--judge-timeout, ...)
        self._lock = threading.Lock()
        self._last = 0.0
        self.stats = {"requests": 0, "retries": 0, "cache_hits": 0}

    def _redact(self, text: str) -> str:
        return text.replace(self.key, "***") if self.key else text

    def _payload(self, messages: list[dict]) -> dict:
        return {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _wait_turn(self) -> None:
        with self._lock:
            wait = self._last + self.min_interval - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            self._last = time.monotonic()

    def _post(self, payload: dict) -> dict:
        """One attempt. Returns the answer text and the per-token log-probabilities the server sent
        (``logprobs.content`` of the OpenAI format, or None); raises _Retry or JudgeError."""
        data = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        self._wait_turn()
        self.stats["requests"] += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            snippet = e.read()[:300].decode("utf-8", "replace") if e.fp else ""
            if e.code in RETRY_STATUS:
                raise _Retry(
                    f"HTTP {e.code}", _retry_after(e.headers.get("Retry-After") if e.headers else None)
                ) from None
            snippet = " ".join(self._redact(snippet).split())
            raise JudgeError(
                f"judge endpoint {self.url} refused the request: HTTP {e.code}: {snippet}"
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            # URLError (refused, unreachable), TimeoutError, ConnectionError and http.client's
            # IncompleteRead / RemoteDisconnected (the server died mid-answer) are all worth a retry
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError):
                raise _Retry(f"no answer within {self.timeout:g} s", None) from None
            raise _Retry(f"{type(reason).__name__}: {reason}", None) from None
        try:
            choice = json.loads(body)["choices"][0]
            answer = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retry(f"malformed response body: {body[:200]!r}", None) from None
        if not isinstance(answer, str):
            raise _Retry(f"malformed response: content is {type(answer).__name__}", None)
        logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not (isinstance(content, list) and all(isinstance(e, dict) for e in content)):
            content = None  # absent, or not the OpenAI per-token format: no log-probabilities
        return {"answer": answer, "logprobs": content}

    def check_reachable(self, timeout: float | None = None) -> None:
        """One ``GET <base>/models`` with a short timeout (``timeout``, default :data:`PROBE_TIMEOUT`,
        at most ``self.timeout``): any HTTP answer
        shows a server is there (a 404 too); no answer, or a refused key (401/403), is a
        :class:`JudgeError` at once, so a judge that is down, or accepts connections and never
        answers, is found in seconds, before the work whose results it would judge. No tokens
        are spent."""
        base = self.url[: -len("/chat/completions")] if self.url.endswith("/chat/completions") else self.url
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        wait = min(PROBE_TIMEOUT if timeout is None else timeout, self.timeout)
        try:
            with urllib.request.urlopen(
                urllib.request.Request(base + "/models", headers=headers), timeout=wait
            ):
                pass
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):  # the chat requests would be refused the same way
                raise JudgeError(
                    f"judge endpoint {base} refused the key (HTTP {e.code} on GET {base}/models, checked "
                    "before any work); check --judge-key / OPENAI_API_KEY"
                ) from None
            return  # the server answered (a server without /models answers 404)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError):
                why = f"accepts connections but sent no answer within {wait:g} s"
            else:
                why = f"cannot be reached ({type(reason).__name__}: {self._redact(str(reason))})"
            raise JudgeError(
                f"judge endpoint {base} {why} (checked before any work with GET {base}/models); "
                "check that the server is up and serving"
            ) from None

    def complete(self, messages: list[dict]) -> str:
        """The answer to ``messages`` (cached by content hash; retried with backoff)."""
        return self.complete_choice(messages)["answer"]

    def complete_choice(self, messages: list[dict], extra: dict | None = None) -> dict:
        """``{"answer": text, "logprobs": [per-token entries] or None}`` for ``messages``.

        ``extra``: request fields added to (or replacing) the default ones, e.g. ``{"logprobs":
        True, "top_logprobs": 5}`` or a sampling ``{"temperature": 1.0, "seed": 3}``; they are part
        of the request's content hash, so each distinct request is cached on its own.
        """
        payload = {**self._payload(messages), **(extra or {})}
        cache_file = None
        if self.cache_dir is not None:
            cache_file = self.cache_dir / f"{hash_config(payload)}.json"
            if cache_file.exists():
                try:
                    cached = read_json(cache_file)
                    self.stats["cache_hits"] += 1
                    return {"answer": cached["answer"], "logprobs": cached.get("logprobs")}
                except (ValueError, KeyError):
                    pass  # a damaged cache entry is asked again
        for attempt in range(self.max_retries + 1):
            try:
                choice = self._post(payload)
                break
            except _Retry as r:
                last = self._redact(" ".join(r.reason.split()))
                if attempt == self.max_retries:
                    raise JudgeError(
                        f"judge endpoint {self.url} gave no usable answer in {attempt + 1} attempt(s) "
                        f"of up to {self.timeout:g} s each (last error: {last}); check the server, or "
                        f"raise --{self.flags}-timeout / --{self.flags}-retries"
                    ) from None
                self.stats["retries"] += 1
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                if r.retry_after is not None:
                    delay = min(self.max_backoff, max(delay, r.retry_after))
                if self.notify is not None:
                    self.notify(
                        f"cwpo: judge: {self.url}: {last}; "
                        f"retry {attempt + 1} of {self.max_retries} in {delay:.3g} s"
                    )
                self.sleep(delay)
        if cache_file is not None:
            write_json(cache_file, {"request": payload, **choice})
        return choice
