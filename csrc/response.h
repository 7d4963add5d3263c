/* The response JSON of a completion (the documented contract) and its
 * delivery into the caller's buffer. */
#ifndef CACTUS_RESPONSE_H
#define CACTUS_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include "generate.h"

typedef struct {
    const cx_gen_result *gen; /* figures of the local generation */
    const char *text;         /* the answer (local, or the cloud's after a handoff) */
    size_t text_len;
    const char *calls_json;   /* function_calls as a JSON array text; NULL means [] */
    bool cloud_handoff;
    const char *cloud_error;  /* why a handoff fell back to the local answer; NULL when none */
} cx_response;

/* Writes the success JSON into buf: CACTUS_OK, or CACTUS_ERR_BUFFER_TOO_SMALL
 * (then buf holds the error JSON when that fits). */
int response_deliver(const cx_response *r, double total_ms, char *buf, size_t size);
/* Writes {"success": false, "error": <last error>, ...} and returns `code`
 * (or CACTUS_ERR_BUFFER_TOO_SMALL); the last error is kept. */
int response_fail(int code, double t_start, char *buf, size_t size);

#endif
