/* Steps several families share, so each forward pass keeps only what is
 * its own. All work on the session's scratch rows for n tokens. */
#ifndef CACTUS_ARCH_COMMON_H
#define CACTUS_ARCH_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "../session.h"

/* x[t] = the embedding row of tokens[t]. */
void arch_embed(cx_session *s, const int32_t *tokens, int n);
/* The plain RoPE cos/sin tables for positions pos0 .. pos0 + n - 1. */
void arch_rope_tables(cx_session *s, int n, int pos0);
/* q, k, v = wq, wk, wv times xn (one weight group: see op_matmul_group). */
void arch_qkv(cx_session *s, const cx_layer *L, int n);
/* gate, up = w_gate, w_up times xn (one weight group). */
void arch_gate_up(cx_session *s, const cx_layer *L, int n);
/* x += W_down(silu(W_gate xn) * W_up xn) with xn = RMSNorm(x, ffn_norm). */
void arch_swiglu_ffn(cx_session *s, const cx_layer *L, int n);
/* The final norm and output head: the last row's logits, or every row's. */
void arch_output(cx_session *s, int n, float *logits, bool all_logits);

#endif
