/* The response JSON of a completion (see response.h). Every figure comes
 * from the generation's own clocks and counters. */
#include "response.h"

#include <stdio.h>
#include <string.h>

#include "include/cactus.h"
#include "json.h"

static void write_figures(strbuf *sb, const cx_gen_result *g, double total_ms) {
    double decode_s = g && g->decode_tokens > 1 ? g->decode_ms / 1000.0 : 0.0;
    double prefill_s = g ? g->prefill_ms / 1000.0 : 0.0;
    int pre = g ? g->prefill_tokens : 0, dec = g ? g->decode_tokens : 0;
    sb_puts(sb, ",\"confidence\":");
    json_write_number(sb, g ? g->confidence : 0.0);
    sb_puts(sb, ",\"time_to_first_token_ms\":");
    json_write_number(sb, g ? g->ttft_ms : 0.0);
    sb_puts(sb, ",\"total_time_ms\":");
    json_write_number(sb, total_ms);
    sb_puts(sb, ",\"prefill_tps\":");
    json_write_number(sb, prefill_s > 0 ? pre / prefill_s : 0.0);
    sb_puts(sb, ",\"decode_tps\":");
    json_write_number(sb, decode_s > 0 ? (dec - 1) / decode_s : 0.0);
    sb_puts(sb, ",\"ram_usage_mb\":");
    json_write_number(sb, cx_rss_mb());
    sb_printf(sb, ",\"prefill_tokens\":%d,\"decode_tokens\":%d,\"total_tokens\":%d", pre, dec, pre + dec);
    /* Beyond the 14 documented keys: what servers need for OpenAI-style usage and finish reasons. */
    sb_printf(sb, ",\"prompt_tokens\":%d,\"finish_reason\":", g ? g->prompt_tokens : 0);
    if (g && g->finish_reason) json_write_string(sb, g->finish_reason, strlen(g->finish_reason));
    else sb_puts(sb, "null");
}

static void write_json(strbuf *sb, const char *error, const cx_response *r, double total_ms) {
    sb_printf(sb, "{\"success\":%s,\"error\":", error ? "false" : "true");
    if (error) json_write_string(sb, error, strlen(error));
    else sb_puts(sb, "null");
    sb_printf(sb, ",\"cloud_handoff\":%s,\"response\":", r && r->cloud_handoff ? "true" : "false");
    if (r) json_write_string(sb, r->text, r->text_len);
    else sb_puts(sb, "null");
    sb_puts(sb, ",\"function_calls\":");
    sb_puts(sb, r && r->calls_json ? r->calls_json : "[]");
    write_figures(sb, r ? r->gen : NULL, total_ms);
    if (r && r->cloud_error) {
        sb_puts(sb, ",\"cloud_error\":");
        json_write_string(sb, r->cloud_error, strlen(r->cloud_error));
    }
    sb_putc(sb, '}');
}

/* Copies the JSON into the caller's buffer; a too-small buffer gets the
 * error JSON when that fits. */
static int deliver(const strbuf *sb, char *buf, size_t size, int rc) {
    if (!sb->failed && sb->len < size) {
        memcpy(buf, sb->data, sb->len + 1);
        return rc;
    }
    cx_error("response buffer too small: the response needs %zu bytes, the buffer has %zu", sb->len + 1, size);
    strbuf e;
    sb_init(&e);
    write_json(&e, cx_last_error(), NULL, 0.0);
    if (!e.failed && e.len < size) memcpy(buf, e.data, e.len + 1);
    else if (size > 0) buf[0] = 0;
    sb_free(&e);
    return CACTUS_ERR_BUFFER_TOO_SMALL;
}

int response_deliver(const cx_response *r, double total_ms, char *buf, size_t size) {
    strbuf sb;
    sb_init(&sb);
    write_json(&sb, NULL, r, total_ms);
    int rc = deliver(&sb, buf, size, CACTUS_OK);
    sb_free(&sb);
    return rc;
}

int response_fail(int code, double t_start, char *buf, size_t size) {
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", cx_last_error());
    strbuf sb;
    sb_init(&sb);
    write_json(&sb, saved, NULL, cx_now_ms() - t_start);
    int rc = deliver(&sb, buf, size, code);
    if (rc == code) cx_error("%s", saved); /* keep the original reason as the last error */
    sb_free(&sb);
    return rc;
}
