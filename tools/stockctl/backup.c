/*
 * backup.c -- `stockctl backup URI DEST` and `stockctl restore SRC DIR`
 * (docs/operations.md, "Backup and restore"), and `stockctl reshard OLD NEW`
 * (docs/sharded.md, "Adding a shard"): the commands that handle a store's
 * data as a whole.
 */
#include <stdio.h>

#include "stockctl.h"

int ctl_backup(const ctl_args *args)
{
    const char *uri = args->positional[0], *dest = args->positional[1];
    stock_t *store = NULL;
    int exit_code = ctl_open(args, uri, &store);
    if (exit_code != CTL_EXIT_OK)
        return exit_code;
    stock_backup_info info;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_backup(store, dest, &info, message);
    exit_code = code == STOCK_OK ? ctl_print_backup(args, "backup", dest, &info)
                                 : ctl_print_failure(args, code, message);
    if (stock_close(store) != STOCK_OK && exit_code == CTL_EXIT_OK)
        exit_code = ctl_exit_code(STOCK_IO);
    return exit_code;
}

/* The restored folder is opened once, so that a backup that does not
 * recover is found now rather than when it is needed. */
int ctl_restore(const ctl_args *args)
{
    const char *src = args->positional[0], *dir = args->positional[1];
    stock_backup_info info;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_restore(src, dir, &info, message);
    if (code != STOCK_OK)
        return ctl_print_failure(args, code, message);
    stock_t *store = NULL;
    int exit_code = ctl_open(args, dir, &store);
    if (exit_code != CTL_EXIT_OK)
        return exit_code;
    exit_code = stock_close(store) == STOCK_OK ? ctl_print_backup(args, "restore", dir, &info)
                                               : ctl_exit_code(STOCK_IO);
    return exit_code;
}

int ctl_reshard(const ctl_args *args)
{
    const stock_config config = {.log = ctl_library_message};
    stock_reshard_info info;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_reshard(args->positional[0], args->positional[1], &config, &info,
                                    message);
    return code == STOCK_OK ? ctl_print_reshard(args, &info)
                            : ctl_print_failure(args, code, message);
}
