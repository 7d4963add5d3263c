"""cffi binding of csrc/include/cactus.h: the cdef mirrors the header; the library is dlopen'ed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from cffi import FFI

CDEF = """
typedef void *cactus_model_t;
typedef void (*cactus_token_callback)(const char *token, uint32_t token_id, void *user_data);
cactus_model_t cactus_init(const char *model_path, const char *corpus_dir, bool cache_index);
int cactus_complete(cactus_model_t model, const char *messages_json, char *response_buffer,
                    size_t buffer_size, const char *options_json, const char *tools_json,
                    cactus_token_callback callback, void *user_data);
int cactus_complete_text(cactus_model_t model, const char *prompt, char *response_buffer, size_t buffer_size,
                         const char *options_json, cactus_token_callback callback, void *user_data);
typedef int (*cactus_cloud_handler)(const char *request_json, char *response_buffer, size_t buffer_size,
                                    void *user_data);
void cactus_set_cloud_handler(cactus_model_t model, cactus_cloud_handler handler, void *user_data);
int cactus_reset(cactus_model_t model);
void cactus_stop(cactus_model_t model);
void cactus_destroy(cactus_model_t model);
const char *cactus_get_last_error(void);
int cactus_tokenize(cactus_model_t model, const char *text, uint32_t *out, size_t cap, size_t *n_out);
int cactus_logits(cactus_model_t model, const uint32_t *tokens, size_t n_tokens, float *out, size_t out_len);
size_t cactus_vocab_size(cactus_model_t model);
int cactus_embed(cactus_model_t model, const char *text, float *out, size_t out_len, size_t *dim);
typedef void *cactus_tokenizer_t;
cactus_tokenizer_t cactus_tokenizer_init(const char *path);
void cactus_tokenizer_destroy(cactus_tokenizer_t tokenizer);
int cactus_tokenizer_encode(cactus_tokenizer_t tokenizer, const char *text, size_t len, bool add_special,
                            bool parse_special, uint32_t *out, size_t cap, size_t *n_out);
int cactus_tokenizer_decode(cactus_tokenizer_t tokenizer, const uint32_t *ids, size_t n, bool special,
                            char *out, size_t out_size, size_t *needed);
size_t cactus_tokenizer_vocab_size(cactus_tokenizer_t tokenizer);
int cactus_render_chat(const char *chat_template, const char *messages_json, const char *tools_json,
                       bool add_generation_prompt, const char *bos_token, const char *eos_token,
                       char *out, size_t out_size, size_t *needed);
"""

# Return codes of cactus.h.
OK = 0
ERR_INVALID_ARGUMENT = -1
ERR_BUFFER_TOO_SMALL = -2
ERR_MODEL = -3
ERR_CONTEXT = -4
ERR_NO_MEMORY = -5
ERR_INTERNAL = -6


class CactusError(RuntimeError):
    """A failed call: the engine's message, and its CACTUS_ERR_* code, which tells the caller's fault
    (ERR_INVALID_ARGUMENT, ERR_CONTEXT) from the engine's. A RuntimeError, as the SDK documents."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code

    @property
    def is_caller_fault(self) -> bool:
        return self.code in (ERR_INVALID_ARGUMENT, ERR_CONTEXT)

ffi = FFI()
ffi.cdef(CDEF)


def _library_path() -> str:
    override = os.environ.get("CACTUS_LIBRARY")
    if override:
        return override
    here = Path(__file__).resolve().parent
    names = ["libcactus.dylib"] if sys.platform == "darwin" else ["libcactus.so"]
    for name in names:
        candidate = here / name
        if candidate.exists():
            return str(candidate)
    raise OSError(
        f"libcactus was not found next to {here}; reinstall the package (pip install .) "
        "or point CACTUS_LIBRARY at a built libcactus"
    )


class _LazyLibrary:
    """Opens libcactus on first use, so pure-Python parts (the converter) work without it."""

    _lib: Any = None

    def __getattr__(self, name: str) -> Any:
        if _LazyLibrary._lib is None:
            _LazyLibrary._lib = ffi.dlopen(_library_path())
        return getattr(_LazyLibrary._lib, name)


lib: Any = _LazyLibrary()


def last_error() -> str:
    return ffi.string(lib.cactus_get_last_error()).decode("utf-8", "replace")
