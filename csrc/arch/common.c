/* Steps shared by the family forward passes (see common.h). */
#include "common.h"

#include "../kernels/kernels.h"
#include "../ops.h"

void arch_embed(cx_session *s, const int32_t *tokens, int n) {
    const cx_weight *e = &s->m->tok_embd;
    int D = s->m->hp.n_embd;
    for (int t = 0; t < n; t++)
        kern_dequant(e->type, e->data + (size_t)tokens[t] * e->row_bytes, s->x + (size_t)t * D, (size_t)D);
}

void arch_rope_tables(cx_session *s, int n, int pos0) {
    const cx_hparams *hp = &s->m->hp;
    int half = hp->head_dim / 2;
    for (int t = 0; t < n; t++)
        op_rope_table(s->rope_cos + (size_t)t * half, s->rope_sin + (size_t)t * half, pos0 + t, hp->head_dim,
                      hp->rope_base);
}

void arch_qkv(cx_session *s, const cx_layer *L, int n) {
    const cx_weight *w[] = {&L->wq, &L->wk, &L->wv};
    float *y[] = {s->q, s->k, s->v};
    op_matmul_group(s->tp, w, y, 3, s->xn, n, s->rowbuf);
}

void arch_gate_up(cx_session *s, const cx_layer *L, int n) {
    const cx_weight *w[] = {&L->w_gate, &L->w_up};
    float *y[] = {s->gate, s->up};
    op_matmul_group(s->tp, w, y, 2, s->xn, n, s->rowbuf);
}

void arch_swiglu_ffn(cx_session *s, const cx_layer *L, int n) {
    const cx_hparams *hp = &s->m->hp;
    int D = hp->n_embd;
    op_rmsnorm_rows(s->xn, s->x, L->ffn_norm, n, D, hp->rms_eps);
    arch_gate_up(s, L, n);
    op_swiglu(s->gate, s->up, n * hp->n_ff);
    op_matmul(s->tp, &L->w_down, s->gate, s->tmp, n, s->rowbuf);
    op_add(s->x, s->tmp, n * D);
}

void arch_output(cx_session *s, int n, float *logits, bool all_logits) {
    const cx_model *m = s->m;
    int D = m->hp.n_embd, first = all_logits ? 0 : n - 1;
    op_rmsnorm_rows(s->xn, s->x + (size_t)first * D, m->output_norm, n - first, D, m->hp.rms_eps);
    op_matmul(s->tp, &m->output, s->xn, logits, n - first, s->rowbuf);
}
