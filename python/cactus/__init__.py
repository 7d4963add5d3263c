"""cactus: on-device LLM inference.

The seed-compatible functions mirror the C API one to one and return the same JSON text;
:class:`Cactus` is the Pythonic wrapper over them.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Self

from ._native import ERR_BUFFER_TOO_SMALL, ERR_INVALID_ARGUMENT, CactusError, ffi, last_error, lib

__all__ = [
    "Cactus",
    "Tokenizer",
    "cactus_complete",
    "cactus_complete_text",
    "cactus_destroy",
    "cactus_embed",
    "cactus_get_last_error",
    "cactus_init",
    "cactus_logits",
    "cactus_reset",
    "cactus_stop",
    "cactus_tokenize",
    "default_model_path",
    "render_chat",
]

__version__ = "0.1.0"
DEFAULT_MODEL = "cactus-chat"

TokenCallback = Callable[[str, int], Any]
JsonArg = Union[str, list, dict, None]


def _to_json(value: JsonArg) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = json.dumps(value)
    return value.encode("utf-8")


def _c_text(text: str, what: str) -> bytes:
    """UTF-8 for a NUL-terminated char * argument: text holding a NUL would be cut short there, silently,
    so it is refused instead (text in JSON arguments escapes it and is not concerned)."""
    if "\0" in text:
        raise CactusError(f"{what} contains a NUL character, which the C API cannot pass", ERR_INVALID_ARGUMENT)
    return text.encode("utf-8")


def _check_handle(model: Any) -> None:
    if model is None or model == ffi.NULL:
        raise RuntimeError("the model handle is NULL (closed or never initialised)")


def cactus_get_last_error() -> str:
    """The last error of this thread ("" when none)."""
    return last_error()


@ffi.callback("int(const char *, char *, size_t, void *)")
def _default_cloud_handler(request_json: Any, buf: Any, size: int, _user_data: Any) -> int:
    """The SDK's cloud transport (cactus.cloud): standard-library HTTPS, verified TLS, a timeout."""
    from .cloud import CloudError, post_chat_completion

    try:
        body = post_chat_completion(json.loads(ffi.string(request_json)))
        if len(body) >= size:
            raise CloudError("the cloud answer is too large")
        code = 0
    except CloudError as exc:
        body, code = str(exc).encode("utf-8")[: size - 1], -1
    except Exception as exc:  # noqa: BLE001 - nothing may unwind through the C core
        body, code = f"cloud handler error: {type(exc).__name__}".encode()[: size - 1], -1
    ffi.memmove(buf, body + b"\0", len(body) + 1)
    return code


def cactus_init(model_path: str, corpus_dir: str | None = None, cache_index: bool = False) -> Any:
    """Loads a model (a .gguf file or a folder holding one); raises RuntimeError on failure.

    The handle gets the SDK's cloud handler (see cactus.cloud) for confidence-based handoff.
    """
    handle = lib.cactus_init(
        str(model_path).encode("utf-8"),
        corpus_dir.encode("utf-8") if corpus_dir else ffi.NULL,
        bool(cache_index),
    )
    if handle == ffi.NULL:
        raise RuntimeError(last_error())
    lib.cactus_set_cloud_handler(handle, _default_cloud_handler, ffi.NULL)
    return handle


def _buffer_size(options_json: bytes | None) -> int:
    # The answer is at most max_tokens tokens; escaping can multiply a byte by six.
    max_tokens = 512
    if options_json:
        try:
            value = json.loads(options_json).get("max_tokens", 512)
            max_tokens = int(value) if isinstance(value, (int, float)) and value > 0 else 512
        except (ValueError, AttributeError, OverflowError):
            pass
    return (1 << 16) + min(max_tokens, 1 << 20) * 256


def _run_completion(model: Any, options: bytes | None, callback: TokenCallback | None, call: Callable) -> str:
    """Shared by the chat and text completions: buffer sizing, the C callback, error mapping."""
    size = _buffer_size(options)
    buf = ffi.new("char[]", size)
    raised: list = []
    c_callback = ffi.NULL
    if callback is not None:

        @ffi.callback("void(const char *, uint32_t, void *)")
        def c_callback(token, token_id, _user_data):  # type: ignore[no-redef]
            if raised:
                return
            try:
                callback(ffi.string(token).decode("utf-8", "replace"), int(token_id))
            except BaseException as exc:  # noqa: BLE001 - re-raised once the C call returns
                raised.append(exc)
                lib.cactus_stop(model)

    rc = call(buf, size, options or ffi.NULL, c_callback)
    if raised:
        raise raised[0]
    if rc < 0:
        raise CactusError(last_error(), rc)
    return ffi.string(buf).decode("utf-8")


def cactus_complete(
    model: Any,
    messages_json: JsonArg,
    options_json: JsonArg = None,
    tools_json: JsonArg = None,
    callback: TokenCallback | None = None,
) -> str:
    """Runs a chat completion and returns the response JSON text.

    ``callback(token, token_id)`` receives each streamed piece. Raises RuntimeError carrying the
    engine's error when the call fails; an exception raised by the callback stops generation and is
    re-raised here.
    """
    _check_handle(model)
    messages = _to_json(messages_json)
    if messages is None:
        raise RuntimeError("messages_json is required")
    tools = _to_json(tools_json) or ffi.NULL

    def call(buf: Any, size: int, options: Any, cb: Any) -> int:
        return lib.cactus_complete(model, messages, buf, size, options, tools, cb, ffi.NULL)

    return _run_completion(model, _to_json(options_json), callback, call)


def cactus_complete_text(
    model: Any, prompt: str, options_json: JsonArg = None, callback: TokenCallback | None = None
) -> str:
    """Completion of a raw text prompt (no chat template); returns the response JSON text."""
    _check_handle(model)
    data = _c_text(prompt, "the prompt")

    def call(buf: Any, size: int, options: Any, cb: Any) -> int:
        return lib.cactus_complete_text(model, data, buf, size, options, cb, ffi.NULL)

    return _run_completion(model, _to_json(options_json), callback, call)


def cactus_reset(model: Any) -> None:
    """Forgets the conversation; RuntimeError while a call runs on the handle (it owns the cache)."""
    _check_handle(model)
    rc = lib.cactus_reset(model)
    if rc < 0:
        raise CactusError(last_error(), rc)


def cactus_stop(model: Any) -> None:
    _check_handle(model)
    lib.cactus_stop(model)


def cactus_destroy(model: Any) -> None:
    if model is not None and model != ffi.NULL:
        lib.cactus_destroy(model)


def cactus_tokenize(model: Any, text: str) -> list:
    """Token ids of ``text`` (no BOS, special tokens not parsed)."""
    _check_handle(model)
    data = _c_text(text, "the text")
    n_out = ffi.new("size_t *")
    cap = len(data) + 16
    out = ffi.new("uint32_t[]", cap)
    rc = lib.cactus_tokenize(model, data, out, cap, n_out)
    if rc == ERR_BUFFER_TOO_SMALL:
        cap = n_out[0]
        out = ffi.new("uint32_t[]", cap)
        rc = lib.cactus_tokenize(model, data, out, cap, n_out)
    if rc < 0:
        raise CactusError(last_error(), rc)
    return [int(out[i]) for i in range(n_out[0])]


def cactus_logits(model: Any, token_ids: Any) -> np.ndarray:
    """Logits of every position of ``token_ids`` from an empty context: (n_tokens, n_vocab) float32.

    Resets the conversation held by the handle.
    """
    _check_handle(model)
    ids = np.ascontiguousarray(np.asarray(token_ids, dtype=np.int64))
    if ids.ndim != 1 or ids.size == 0:
        raise RuntimeError("token_ids must be a non-empty 1-D sequence")
    if ids.min() < 0 or ids.max() > 0xFFFFFFFF:
        raise RuntimeError("token ids must be in [0, 2^32)")
    ids32 = ids.astype(np.uint32)
    n_vocab = int(lib.cactus_vocab_size(model))
    out = np.empty((ids32.size, n_vocab), dtype=np.float32)
    rc = lib.cactus_logits(
        model,
        ffi.cast("const uint32_t *", ffi.from_buffer(ids32)),
        ids32.size,
        ffi.cast("float *", ffi.from_buffer(out)),
        out.size,
    )
    if rc < 0:
        raise CactusError(last_error(), rc)
    return out


def _opt_bytes(value: str | None) -> Any:
    return value.encode("utf-8") if value is not None else ffi.NULL


def render_chat(
    messages: JsonArg,
    tools: JsonArg = None,
    *,
    template: str | None = None,
    add_generation_prompt: bool = True,
    bos_token: str | None = None,
    eos_token: str | None = None,
) -> str:
    """The prompt text cactus_complete renders for ``messages`` with a model's chat ``template``
    (its Jinja text, used to recognise the family; None means ChatML)."""
    msgs = _to_json(messages)
    tls = _to_json(tools)
    needed = ffi.new("size_t *")
    size = 1 << 16
    for _ in range(2):
        out = ffi.new("char[]", size)
        rc = lib.cactus_render_chat(
            _opt_bytes(template), msgs or ffi.NULL, tls or ffi.NULL, bool(add_generation_prompt),
            _opt_bytes(bos_token), _opt_bytes(eos_token), out, size, needed,
        )
        if rc == ERR_BUFFER_TOO_SMALL:
            size = int(needed[0])
            continue
        if rc < 0:
            raise CactusError(last_error(), rc)
        return ffi.unpack(out, int(needed[0]) - 1).decode("utf-8")
    raise CactusError(last_error(), rc)


def cactus_embed(model: Any, text: str) -> np.ndarray:
    """The embedding of ``text``: a unit-length float32 vector of the model's hidden size."""
    _check_handle(model)
    dim = ffi.new("size_t *")
    data = _c_text(text, "the text")
    rc = lib.cactus_embed(model, data, ffi.NULL, 0, dim)
    if rc != ERR_BUFFER_TOO_SMALL:
        raise CactusError(last_error(), rc)
    out = np.empty(int(dim[0]), dtype=np.float32)
    rc = lib.cactus_embed(model, data, ffi.cast("float *", ffi.from_buffer(out)), out.size, dim)
    if rc < 0:
        raise CactusError(last_error(), rc)
    return out


def default_model_path() -> str:
    """Where the default model shipped with the package lives (a folder holding its GGUF)."""
    here = Path(__file__).resolve().parent
    for base in (here / "weights", here.parent.parent / "weights"):
        candidate = base / DEFAULT_MODEL
        if candidate.is_dir() and any(candidate.glob("*.gguf")):
            return str(candidate)
    raise FileNotFoundError(f"the default model {DEFAULT_MODEL!r} is not installed next to {here}")


class Tokenizer:
    """A model's tokenizer alone, from a GGUF (a vocab-only GGUF works; weights are not read)."""

    def __init__(self, path: str) -> None:
        handle = lib.cactus_tokenizer_init(str(path).encode("utf-8"))
        if handle == ffi.NULL:
            raise RuntimeError(last_error())
        self._handle: Any = handle

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Interpreter shutdown may have torn down the library already.
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None:
            lib.cactus_tokenizer_destroy(handle)

    @property
    def _h(self) -> Any:
        if self._handle is None:
            raise RuntimeError("this Tokenizer is closed")
        return self._handle

    @property
    def vocab_size(self) -> int:
        return int(lib.cactus_tokenizer_vocab_size(self._h))

    def encode(self, text: str, add_special: bool = False, parse_special: bool = False) -> list:
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
        n_out = ffi.new("size_t *")
        cap = len(data) + 8
        out = ffi.new("uint32_t[]", cap)
        rc = lib.cactus_tokenizer_encode(self._h, data, len(data), add_special, parse_special, out, cap, n_out)
        if rc == ERR_BUFFER_TOO_SMALL:
            cap = int(n_out[0])
            out = ffi.new("uint32_t[]", cap)
            rc = lib.cactus_tokenizer_encode(self._h, data, len(data), add_special, parse_special, out, cap, n_out)
        if rc < 0:
            raise CactusError(last_error(), rc)
        return list(ffi.unpack(out, int(n_out[0])))

    def decode(self, ids: Any, special: bool = False) -> str:
        arr = [int(i) for i in ids]
        if any(i < 0 or i > 0xFFFFFFFF for i in arr):
            raise RuntimeError("token ids must be in [0, 2^32)")
        c_ids = ffi.new("uint32_t[]", arr) if arr else ffi.NULL
        needed = ffi.new("size_t *")
        size = 16 * len(arr) + 64
        for _ in range(2):
            out = ffi.new("char[]", size)
            rc = lib.cactus_tokenizer_decode(self._h, c_ids, len(arr), special, out, size, needed)
            if rc == ERR_BUFFER_TOO_SMALL:
                size = int(needed[0])
                continue
            if rc < 0:
                raise CactusError(last_error(), rc)
            return ffi.unpack(out, int(needed[0]) - 1).decode("utf-8", "replace")
        raise CactusError(last_error(), rc)


class Cactus:
    """A loaded model and its conversation. Use as a context manager, or call :meth:`close`."""

    def __init__(self, model_path: str) -> None:
        self._handle: Any = cactus_init(model_path)
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Interpreter shutdown may have torn down the library already.
        with contextlib.suppress(Exception):
            self.close()

    @property
    def handle(self) -> Any:
        if self._handle is None:
            raise RuntimeError("this Cactus model is closed")
        return self._handle

    def close(self) -> None:
        """Frees the model. A completion running on another thread is stopped and waited for first."""
        handle = getattr(self, "_handle", None)
        if handle is None:
            return
        lib.cactus_stop(handle)
        with self._lock:  # the running call, if any, returns within a token
            handle, self._handle = self._handle, None
            if handle is not None:
                cactus_destroy(handle)

    def complete(
        self,
        messages: str | list,
        *,
        tools: list | None = None,
        callback: TokenCallback | None = None,
        **options: Any,
    ) -> dict:
        """Chat completion; ``messages`` is a list of {role, content} or a single user string.

        Options are those of the C API (max_tokens, temperature, top_p, top_k, stop_sequences, ...).
        Returns the response JSON as a dict.
        """
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        with self._lock:
            text = cactus_complete(self.handle, messages, options or None, tools, callback)
        return json.loads(text)

    def complete_text(self, prompt: str, *, callback: TokenCallback | None = None, **options: Any) -> dict:
        """Completion of a raw text prompt (no chat template); returns the response JSON as a dict."""
        with self._lock:
            text = cactus_complete_text(self.handle, prompt, options or None, callback)
        return json.loads(text)

    def tokenize(self, text: str) -> list:
        with self._lock:
            return cactus_tokenize(self.handle, text)

    def logits(self, token_ids: Any) -> np.ndarray:
        with self._lock:
            return cactus_logits(self.handle, token_ids)

    def embed(self, text: str) -> np.ndarray:
        """Mean-pooled, L2-normalised final hidden states of ``text`` (resets the conversation)."""
        with self._lock:
            return cactus_embed(self.handle, text)

    def reset(self) -> None:
        """Forgets the conversation; waits for a completion running on another thread."""
        with self._lock:
            cactus_reset(self.handle)

    def stop(self) -> None:
        """Ends a running completion after the current token (safe from another thread)."""
        cactus_stop(self.handle)

    @property
    def vocab_size(self) -> int:
        return int(lib.cactus_vocab_size(self.handle))
