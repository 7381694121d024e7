/*
 * registry.c -- the backends stock_open() can choose from, most specific
 * URI schemes first; the embedded engine takes any plain path, so it is last.
 */
#include "backend/backend.h"

const stock_backend_ops *const stock_backends[] = {
    &remote_backend,
    &postgres_backend,
    &sharded_backend,
    &embedded_backend,
    NULL,
};
