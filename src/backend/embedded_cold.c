/*
 * embedded_cold.c -- the cold store over LMDB (embedded_cold.h).
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "backend/embedded_cold.h"
#include "lib/little_endian.h"
#include "lib/message.h"

#define KEY_UNDO 'U'
#define KEY_MOVES "Mmoves"
/* Forgetting: 'W' + move -> i64 its time; 'T' + move + item key -> "". */
#define KEY_MOVE_TIME 'W'
#define KEY_MOVED 'T'
/* 'U' + u64 move + ('T' + u64 move +) kind + id. */
#define KEY_BYTES_MAX (2 * (1 + 8) + 1 + STOCK_ID_MAX)

struct cold {
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *write;            /* the step of a move under way, or NULL */
    bool moving;               /* a move has begun, not committed or aborted */
    bool prune_due;            /* the undo of old moves is still to go */
    MDB_txn *read;             /* reset between reads, renewed for each */
    uint64_t moves;
    bool forgetting;           /* the move under way indexes what it puts */
    int64_t forget_before_us;  /* what moves before this time put is to go
                                  (cold_move_forget) */
    int failure;               /* the first LMDB error of the move under way */
    uint8_t undo[1 + CORE_COLD_VALUE_MAX];
};

static stock_code fail(int rc, const char *what, char *message, size_t size)
{
    message_set(message, size, "cold store: %s: %s", what, mdb_strerror(rc));
    return rc == ENOMEM ? STOCK_NOMEM : STOCK_IO;
}

static void cold_path(const char *dir, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, COLD_FILE);
}

bool cold_exists(const char *dir)
{
    char path[PATH_MAX + sizeof COLD_FILE];
    cold_path(dir, path, sizeof path);
    struct stat info;
    return stat(path, &info) == 0;
}

static size_t item_key(uint8_t *key, core_cold_kind kind, stock_id id)
{
    key[0] = (uint8_t)kind;
    memcpy(key + 1, id.ptr, id.len);
    return 1 + (size_t)id.len;
}

/* 'U' + move (big endian) [+ item key]. */
static size_t undo_key(uint8_t *key, uint64_t move, const uint8_t *item, size_t item_len)
{
    key[0] = KEY_UNDO;
    for (int i = 0; i < 8; i++)
        key[1 + i] = (uint8_t)(move >> (56 - 8 * i));
    if (item_len > 0)
        memcpy(key + 9, item, item_len);
    return 9 + item_len;
}

static int read_moves(MDB_txn *txn, MDB_dbi dbi, uint64_t *moves)
{
    MDB_val key = {sizeof KEY_MOVES - 1, (void *)KEY_MOVES}, data;
    int rc = mdb_get(txn, dbi, &key, &data);
    if (rc == MDB_NOTFOUND) {
        *moves = 0;
        return 0;
    }
    if (rc == 0 && data.mv_size != 8)
        return MDB_CORRUPTED;
    if (rc == 0)
        *moves = le_get_u64(data.mv_data);
    return rc;
}

static int write_moves(MDB_txn *txn, MDB_dbi dbi, uint64_t moves)
{
    uint8_t bytes[8];
    le_put_u64(bytes, moves);
    MDB_val key = {sizeof KEY_MOVES - 1, (void *)KEY_MOVES}, data = {8, bytes};
    return mdb_put(txn, dbi, &key, &data, 0);
}

stock_code cold_open(const char *dir, cold **out, char *message, size_t size)
{
    *out = NULL;
    cold *store = calloc(1, sizeof *store);
    if (store == NULL)
        return STOCK_NOMEM;
    char path[PATH_MAX + sizeof COLD_FILE];
    cold_path(dir, path, sizeof path);
    MDB_txn *txn = NULL;
    const char *what = "mdb_env_create";
    int rc = mdb_env_create(&store->env);
    if (rc == 0 && (what = "mdb_env_set_mapsize",
                    rc = mdb_env_set_mapsize(store->env, COLD_MAP_BYTES)) == 0 &&
        (what = path, rc = mdb_env_open(store->env, path, MDB_NOSUBDIR | MDB_NOTLS, 0644)) == 0 &&
        (what = "mdb_txn_begin", rc = mdb_txn_begin(store->env, NULL, 0, &txn)) == 0 &&
        (what = "mdb_dbi_open", rc = mdb_dbi_open(txn, NULL, 0, &store->dbi)) == 0 &&
        (what = "reading the move count", rc = read_moves(txn, store->dbi, &store->moves)) == 0 &&
        (what = "mdb_txn_commit", rc = mdb_txn_commit(txn), txn = NULL, rc) == 0 &&
        (what = "mdb_txn_begin", rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &store->read)) == 0) {
        mdb_txn_reset(store->read);
        *out = store;
        return STOCK_OK;
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    stock_code code = fail(rc, what, message, size);
    cold_close(store);
    return code;
}

void cold_close(cold *store)
{
    if (store == NULL)
        return;
    if (store->write != NULL)
        mdb_txn_abort(store->write);
    if (store->read != NULL)
        mdb_txn_abort(store->read);
    if (store->env != NULL)
        mdb_env_close(store->env);
    free(store);
}

uint64_t cold_moves(const cold *store)
{
    return store->moves;
}

int cold_get(void *context, core_cold_kind kind, stock_id id, uint8_t *value, size_t *len)
{
    cold *store = context;
    uint8_t bytes[KEY_BYTES_MAX];
    MDB_val key = {item_key(bytes, kind, id), bytes}, data;
    /* Never the move's transaction, which belongs to the thread that
     * steps it: what it has put is still in memory, so a thaw needs only
     * what is committed. */
    if (mdb_txn_renew(store->read) != 0)
        return -1;
    int rc = mdb_get(store->read, store->dbi, &key, &data);
    int found = rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : -1;
    if (found == 1 && data.mv_size <= CORE_COLD_VALUE_MAX) {
        memcpy(value, data.mv_data, data.mv_size);
        *len = data.mv_size;
    } else if (found == 1) {
        found = -1;
    }
    mdb_txn_reset(store->read);
    return found;
}

/* 'U'|'W'|'T' + move (big endian) [+ item key]. */
static size_t move_key(uint8_t *key, uint8_t prefix, uint64_t move, const uint8_t *item,
                       size_t item_len)
{
    size_t len = undo_key(key, move, item, item_len);
    key[0] = prefix;
    return len;
}

/* Writes key (value NULL: deletes it) in the move under way, keeping its
 * old value as the move's undo the first time the move touches it. */
static int write_undoable(cold *store, const uint8_t *key, size_t key_len,
                          const void *value, size_t len)
{
    MDB_val at = {key_len, (void *)key}, old;
    int rc = mdb_get(store->write, store->dbi, &at, &old);
    if (rc == 0 && old.mv_size <= CORE_COLD_VALUE_MAX) {
        store->undo[0] = 1;
        memcpy(store->undo + 1, old.mv_data, old.mv_size);
    } else if (rc == MDB_NOTFOUND) {
        store->undo[0] = 0;
        old.mv_size = 0;
    } else {
        return rc == 0 ? MDB_CORRUPTED : rc;
    }
    uint8_t undo[KEY_BYTES_MAX];
    MDB_val undo_at = {undo_key(undo, store->moves + 1, key, key_len), undo};
    MDB_val undo_value = {1 + old.mv_size, store->undo};
    rc = mdb_put(store->write, store->dbi, &undo_at, &undo_value, MDB_NOOVERWRITE);
    if (rc != 0 && rc != MDB_KEYEXIST)
        return rc;
    if (value == NULL)
        return store->undo[0] == 0 ? 0 : mdb_del(store->write, store->dbi, &at, NULL);
    MDB_val data = {len, (void *)value};
    return mdb_put(store->write, store->dbi, &at, &data, 0);
}

/* Empties the values of what move `move` put (its 'T' keys), and drops
 * those keys, up to *budget of them (counted down); once none is left,
 * drops the move's time too and sets *done. */
static int forget_move(cold *store, MDB_cursor *cursor, uint64_t move, uint64_t *budget,
                       bool *done)
{
    uint8_t mark[KEY_BYTES_MAX];
    size_t mark_len = move_key(mark, KEY_MOVED, move, NULL, 0);
    *done = false;
    for (; *budget > 0; --*budget) {
        MDB_val key = {mark_len, mark}, data;
        int rc = mdb_cursor_get(cursor, &key, &data, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || (rc == 0 && (key.mv_size <= mark_len ||
                                               memcmp(key.mv_data, mark, mark_len) != 0))) {
            uint8_t time_key[KEY_BYTES_MAX];
            *done = true;
            return write_undoable(store, time_key,
                                  move_key(time_key, KEY_MOVE_TIME, move, NULL, 0), NULL, 0);
        }
        if (rc != 0)
            return rc;
        uint8_t moved[KEY_BYTES_MAX];
        size_t moved_len = key.mv_size;
        memcpy(moved, key.mv_data, moved_len);
        if ((rc = write_undoable(store, moved + mark_len, moved_len - mark_len, "", 0)) != 0 ||
            (rc = write_undoable(store, moved, moved_len, NULL, 0)) != 0)
            return rc;
    }
    return 0;
}

/* Forgets the moves whose time is before forget_before_us, oldest first
 * (moves are numbered in time order), up to budget keys (*forgotten: how
 * many); *done once none is left. What is forgotten is gone from the keys
 * walked, so the next call goes on where this one stopped. */
static int forget_moves(cold *store, int64_t forget_before_us, uint64_t budget, bool *done,
                        uint64_t *forgotten)
{
    uint64_t budget_given = budget;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(store->write, store->dbi, &cursor);
    bool move_done = true;
    *done = false;
    for (uint64_t skip = 0; rc == 0 && move_done && budget > 0;) {
        uint8_t start[KEY_BYTES_MAX];
        MDB_val key = {move_key(start, KEY_MOVE_TIME, skip, NULL, 0), start}, data;
        rc = mdb_cursor_get(cursor, &key, &data, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || (rc == 0 && (key.mv_size != 9 ||
                                               ((const uint8_t *)key.mv_data)[0] != KEY_MOVE_TIME ||
                                               data.mv_size != 8 ||
                                               (int64_t)le_get_u64(data.mv_data) >=
                                                   forget_before_us))) {
            *done = true;
            rc = 0;
            break;
        }
        uint64_t move = 0;
        for (int i = 1; i < 9; i++)
            move = move << 8 | ((const uint8_t *)key.mv_data)[i];
        rc = forget_move(store, cursor, move, &budget, &move_done);
        skip = move + 1;
    }
    mdb_cursor_close(cursor);
    *forgotten = budget_given - budget;
    return rc;
}

/* Deletes the undo of every move up to `last`, oldest first. */
static int prune_undo(cold *store, MDB_txn *txn, uint64_t last)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn, store->dbi, &cursor);
    if (rc != 0)
        return rc;
    uint8_t start[KEY_BYTES_MAX], end[KEY_BYTES_MAX];
    size_t end_len = undo_key(end, last + 1, NULL, 0);
    MDB_val key = {undo_key(start, 0, NULL, 0), start}, data;
    rc = mdb_cursor_get(cursor, &key, &data, MDB_SET_RANGE);
    while (rc == 0) {
        size_t common = key.mv_size < end_len ? key.mv_size : end_len;
        int order = memcmp(key.mv_data, end, common);
        if (order > 0 || (order == 0 && key.mv_size >= end_len))
            break;
        if ((rc = mdb_cursor_del(cursor, 0)) != 0)
            break;
        rc = mdb_cursor_get(cursor, &key, &data, MDB_GET_CURRENT);
        if (rc == EINVAL || rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(cursor, &key, &data, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The first step of move `move`: marks it (its undo is kept), records its
 * time when forgetting (cold_move_forget does the forgetting), and drops
 * the undo no longer kept. */
static int start_move(cold *store, uint64_t move, int64_t time_us, int64_t forget_before_us)
{
    uint8_t key_bytes[KEY_BYTES_MAX];
    MDB_val key = {undo_key(key_bytes, move, NULL, 0), key_bytes};
    MDB_val none = {0, ""};
    int rc = mdb_put(store->write, store->dbi, &key, &none, 0);
    store->forgetting = forget_before_us > 0;
    store->forget_before_us = forget_before_us;
    if (rc == 0 && store->forgetting) {
        uint8_t time[8];
        le_put_u64(time, (uint64_t)time_us);
        key.mv_size = move_key(key_bytes, KEY_MOVE_TIME, move, NULL, 0);
        rc = write_undoable(store, key_bytes, key.mv_size, time, sizeof time);
    }
    /* The undo of the moves before the last COLD_UNDO_MOVES goes with the
     * first commit of a step (cold_move_step) rather than now or in the
     * last step, which run while ops wait. */
    store->prune_due = move > COLD_UNDO_MOVES;
    return rc;
}

stock_code cold_move_begin(cold *store, int64_t time_us, int64_t forget_before_us,
                           char *message, size_t size)
{
    assert(store->write == NULL && !store->moving);
    store->failure = 0;
    /* A step's commit syncs its pages but not the meta page that makes
     * them current: a crash keeps the store as it was after some step (or
     * before the move), and an unfinished move is taken back at the next
     * open. The last step syncs both (cold_move_commit). */
    int rc = mdb_env_set_flags(store->env, MDB_NOMETASYNC, 1);
    if (rc == 0)
        rc = mdb_txn_begin(store->env, NULL, 0, &store->write);
    if (rc != 0) {
        store->write = NULL;
        mdb_env_set_flags(store->env, MDB_NOMETASYNC, 0);
        return fail(rc, "beginning a move", message, size);
    }
    store->moving = true;
    rc = start_move(store, store->moves + 1, time_us, forget_before_us);
    if (rc != 0) {
        /* Nothing of it was committed: a failed begin leaves no move, so
         * that the next one may begin. */
        mdb_txn_abort(store->write);
        store->write = NULL;
        store->moving = false;
        mdb_env_set_flags(store->env, MDB_NOMETASYNC, 0);
        return fail(rc, "beginning a move", message, size);
    }
    return STOCK_OK;
}

/* The transaction of the step under way: the open one, or a new one. */
static int step_txn(cold *store)
{
    assert(store->moving);
    if (store->write != NULL)
        return 0;
    int rc = mdb_txn_begin(store->env, NULL, 0, &store->write);
    if (rc != 0)
        store->write = NULL;
    return rc;
}

stock_code cold_move_forget(cold *store, uint64_t keys_max, bool *done, uint64_t *forgotten,
                            char *message, size_t size)
{
    assert(store->moving && store->forgetting && keys_max > 0);
    *done = false;
    *forgotten = 0;
    int rc = store->failure != 0 ? store->failure : step_txn(store);
    if (rc == 0)
        rc = forget_moves(store, store->forget_before_us, keys_max, done, forgotten);
    if (rc != 0) {
        store->failure = rc;
        return fail(rc, "forgetting", message, size);
    }
    return STOCK_OK;
}

int cold_move_put(void *context, core_cold_kind kind, stock_id id, const uint8_t *value,
                  size_t len)
{
    cold *store = context;
    assert(store->moving && len > 0);
    uint8_t item[KEY_BYTES_MAX], moved[KEY_BYTES_MAX];
    size_t item_len = item_key(item, kind, id);
    int rc = store->failure != 0 ? store->failure : step_txn(store);
    if (rc == 0)
        rc = write_undoable(store, item, item_len, value, len);
    if (rc == 0 && store->forgetting)
        rc = write_undoable(store, moved, move_key(moved, KEY_MOVED, store->moves + 1, item,
                                                   item_len), "", 0);
    if (rc != 0) {
        store->failure = rc;
        return -1;
    }
    return 0;
}

stock_code cold_move_step(cold *store, char *message, size_t size)
{
    assert(store->moving);
    int rc = store->failure;
    if (rc == 0 && store->prune_due && (rc = step_txn(store)) == 0) {
        rc = prune_undo(store, store->write, store->moves + 1 - COLD_UNDO_MOVES);
        store->prune_due = false;
    }
    if (rc == 0 && store->write != NULL)
        rc = mdb_txn_commit(store->write);
    else if (store->write != NULL)
        mdb_txn_abort(store->write);
    store->write = NULL;
    if (rc != 0) {
        store->failure = rc;
        return fail(rc, "committing a step of a move", message, size);
    }
    return STOCK_OK;
}

stock_code cold_move_commit(cold *store, char *message, size_t size)
{
    assert(store->moving);
    int rc = store->failure;
    const char *what = "writing a moved entity";
    if (rc == 0)
        what = "beginning the last step of a move", rc = step_txn(store);
    if (rc == 0 && store->prune_due)
        what = "dropping old undo", rc = prune_undo(store, store->write,
                                                    store->moves + 1 - COLD_UNDO_MOVES);
    if (rc == 0)
        what = "mdb_env_set_flags", rc = mdb_env_set_flags(store->env, MDB_NOMETASYNC, 0);
    if (rc == 0)
        what = "writing the move count", rc = write_moves(store->write, store->dbi,
                                                          store->moves + 1);
    if (rc == 0)
        what = "committing a move", rc = mdb_txn_commit(store->write);
    else if (store->write != NULL)
        mdb_txn_abort(store->write);
    store->write = NULL;
    if (rc != 0) {
        store->failure = rc;
        return fail(rc, what, message, size);
    }
    store->moving = false;
    store->moves++;
    return STOCK_OK;
}

static stock_code take_back_unfinished(cold *store, MDB_txn *txn, bool *taken,
                                       char *message, size_t size);

stock_code cold_move_abort(cold *store, char *message, size_t size)
{
    if (store->write != NULL)
        mdb_txn_abort(store->write);
    store->write = NULL;
    if (!store->moving)
        return STOCK_OK;
    store->moving = false;
    int rc = mdb_env_set_flags(store->env, MDB_NOMETASYNC, 0);
    MDB_txn *txn = NULL;
    if (rc == 0)
        rc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (rc != 0)
        return fail(rc, "beginning to take a move back", message, size);
    bool taken;
    stock_code code = take_back_unfinished(store, txn, &taken, message, size);
    if (code != STOCK_OK) {
        mdb_txn_abort(txn);
        return code;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return fail(rc, "committing the take-back of a move", message, size);
    return STOCK_OK;
}

/* Takes back move `move` in txn: every key it wrote gets its old value
 * back (or goes), and its undo goes. MDB_NOTFOUND when its undo is gone. */
static int undo_move(cold *store, MDB_txn *txn, uint64_t move)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn, store->dbi, &cursor);
    if (rc != 0)
        return rc;
    uint8_t mark[KEY_BYTES_MAX];
    size_t mark_len = undo_key(mark, move, NULL, 0);
    MDB_val key = {mark_len, mark}, data;
    rc = mdb_cursor_get(cursor, &key, &data, MDB_SET);
    while (rc == 0 && key.mv_size >= mark_len && memcmp(key.mv_data, mark, mark_len) == 0) {
        if (key.mv_size > mark_len) {
            MDB_val item = {key.mv_size - mark_len, (uint8_t *)key.mv_data + mark_len};
            const uint8_t *undo = data.mv_data;
            if (data.mv_size < 1 || (undo[0] == 0 && data.mv_size != 1)) {
                rc = MDB_CORRUPTED;
                break;
            }
            MDB_val old = {data.mv_size - 1, (void *)(undo + 1)};
            rc = undo[0] == 1 ? mdb_put(txn, store->dbi, &item, &old, 0)
                              : mdb_del(txn, store->dbi, &item, NULL);
            if (rc != 0)
                break;
        }
        /* The cursor stays on the undo key: delete it and look again. */
        if ((rc = mdb_cursor_get(cursor, &key, &data, MDB_GET_CURRENT)) != 0 ||
            (rc = mdb_cursor_del(cursor, 0)) != 0)
            break;
        key = (MDB_val){mark_len, mark};
        rc = mdb_cursor_get(cursor, &key, &data, MDB_SET_RANGE);
    }
    mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Whether the undo of move is still kept. */
static int undo_kept(cold *store, MDB_txn *txn, uint64_t move)
{
    uint8_t mark[KEY_BYTES_MAX];
    MDB_val key = {undo_key(mark, move, NULL, 0), mark}, data;
    return mdb_get(txn, store->dbi, &key, &data);
}

/* Takes back, in txn, what the steps of a move that did not commit wrote
 * (move moves + 1, whose undo they kept); *taken says whether there was
 * one. */
static stock_code take_back_unfinished(cold *store, MDB_txn *txn, bool *taken,
                                       char *message, size_t size)
{
    int rc = undo_kept(store, txn, store->moves + 1);
    *taken = rc == 0;
    if (rc == 0)
        rc = undo_move(store, txn, store->moves + 1);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return fail(rc, "taking back an unfinished move", message, size);
    return STOCK_OK;
}

stock_code cold_rollback(cold *store, uint64_t moves, bool *unfinished, char *message,
                         size_t size)
{
    *unfinished = false;
    assert(store->write == NULL && !store->moving);
    if (moves > store->moves) {
        message_set(message, size, "the snapshot knows of %llu cold store moves, "
                    "the cold store (%s) holds %llu: it is older than the snapshot",
                    (unsigned long long)moves, COLD_FILE, (unsigned long long)store->moves);
        return STOCK_CORRUPT;
    }
    MDB_txn *txn;
    int rc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (rc != 0)
        return fail(rc, "beginning a rollback", message, size);
    stock_code code = take_back_unfinished(store, txn, unfinished, message, size);
    if (code != STOCK_OK) {
        mdb_txn_abort(txn);
        return code;
    }
    for (uint64_t move = store->moves; move > moves; move--) {
        if ((rc = undo_kept(store, txn, move)) == MDB_NOTFOUND) {
            mdb_txn_abort(txn);
            message_set(message, size, "the cold store (%s) is %llu moves ahead of the "
                        "snapshot and keeps the undo of only the last %d",
                        COLD_FILE, (unsigned long long)(store->moves - moves), COLD_UNDO_MOVES);
            return STOCK_CORRUPT;
        }
        if (rc != 0 || (rc = undo_move(store, txn, move)) != 0) {
            mdb_txn_abort(txn);
            return fail(rc, "rolling a move back", message, size);
        }
    }
    if ((rc = write_moves(txn, store->dbi, moves)) != 0) {
        mdb_txn_abort(txn);
        return fail(rc, "rolling a move back", message, size);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return fail(rc, "committing a rollback", message, size);
    store->moves = moves;
    return STOCK_OK;
}

/* The moves committed now, read in a transaction of this thread's. */
static int committed_moves(cold *store, uint64_t *moves)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return rc;
    rc = read_moves(txn, store->dbi, moves);
    mdb_txn_abort(txn);
    return rc;
}

stock_code cold_copy(cold *store, int dest_fd, uint64_t moves_at_point, uint64_t *bytes,
                     char *message, size_t size)
{
    *bytes = 0;
    int fd = openat(dest_fd, COLD_FILE, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        message_set(message, size, "cannot create the copy of %s: %s", COLD_FILE,
                    strerror(errno));
        return STOCK_IO;
    }
    int rc = mdb_env_copyfd2(store->env, fd, MDB_CP_COMPACT);
    struct stat info;
    stock_code code = rc != 0 ? fail(rc, "copying", message, size) : STOCK_OK;
    if (code == STOCK_OK && (fsync(fd) != 0 || fstat(fd, &info) != 0)) {
        message_set(message, size, "cannot sync the copy of %s: %s", COLD_FILE,
                    strerror(errno));
        code = STOCK_IO;
    }
    close(fd);
    uint64_t moves = 0;
    if (code == STOCK_OK && (rc = committed_moves(store, &moves)) != 0)
        code = fail(rc, "reading the move count", message, size);
    if (code == STOCK_OK && moves + 1 > moves_at_point + COLD_UNDO_MOVES) {
        message_set(message, size, "the cold store made %llu moves during its copy, more "
                    "than the backup's snapshot can be paired with: try again",
                    (unsigned long long)(moves - moves_at_point));
        code = STOCK_IO;
    }
    if (code == STOCK_OK)
        *bytes = (uint64_t)info.st_size;
    return code;
}
