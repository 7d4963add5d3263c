/* What a cactus_model_t points to: one model, one session, and the flags
 * and hooks of the API layer. */
#ifndef CACTUS_HANDLE_H
#define CACTUS_HANDLE_H

#include <stdatomic.h>

#include "include/cactus.h"
#include "model.h"
#include "session.h"

typedef struct {
    cx_model *m;
    cx_session *s;
    atomic_bool cancel; /* set by cactus_stop */
    atomic_bool busy;   /* one call at a time per handle */
    cactus_cloud_handler cloud;
    void *cloud_data;
} cx_handle;

#endif
