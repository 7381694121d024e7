/*
 * embedded_cold.h -- the cold store of retention: entities that left the embedded
 * engine's memory (src/core/retain.c encodes them), kept in an LMDB file
 * beside the flow log (docs/engine.md, "Retention").
 *
 * LMDB: one B+tree in one memory-mapped file, copy-on-write pages, every
 * committed write transaction durable and atomic (it syncs the file before
 * it returns), reads without locks. A move is one write transaction: its
 * entities, the number of the move, and an undo entry per key it writes
 * (the value it replaced, or none), so that recovery can take back the
 * moves newer than the snapshot it starts from (cold_rollback) and replay
 * the log on the cold store as it was when that snapshot was taken.
 *
 * Keys: kind byte ('L', 'O', 'R', 'A') + id -> value (empty: forgotten);
 * 'U' + u64 move (big endian, so a move's entries are adjacent) [+ key] ->
 * undo (u8 1 + old value, or u8 0: no old value; the key alone marks that
 * the move's undo is kept); "Mmoves" -> u64 moves committed; with
 * forgetting, 'W' + u64 move -> i64 its time and 'T' + u64 move + item key
 * -> "" for what it put.
 *
 * Threads: reads (cold_get) one thread at a time (the embedded engine's
 * applier role, which passes between threads: the file is opened with
 * MDB_NOTLS, so a read transaction is no thread's); a move, from its begin
 * to its commit or abort, on one thread, at once with reads; cold_copy on
 * any thread.
 */
#ifndef STOCK_EMBEDDED_COLD_H
#define STOCK_EMBEDDED_COLD_H

#include <stdint.h>

#include "core/core.h"

/* The file in the data folder, and its lock file beside it. */
#define COLD_FILE "cold.mdb"
/* Address space LMDB reserves for the file (it maps it whole; the file only
 * grows as it fills): room for about 10 billion cold lines. */
#define COLD_MAP_BYTES (1ull << 40)
/* Moves whose undo is kept: recovery starts from the newest snapshot, which
 * the engine takes after every move, or the one before it (the journal
 * keeps one older generation), so it never has to take back more than two. */
#define COLD_UNDO_MOVES 4

typedef struct cold cold;

/* True when the data folder at dir holds a cold store. */
bool cold_exists(const char *dir);

/* Opens (creating) the cold store of the data folder dir. STOCK_OK and
 * *out; STOCK_IO or STOCK_NOMEM with message. */
stock_code cold_open(const char *dir, cold **out, char *message, size_t size);
void cold_close(cold *store);

/* Moves committed so far. */
uint64_t cold_moves(const cold *store);

/* core_cold.get: 1 found, 0 absent, -1 failed. */
int cold_get(void *store, core_cold_kind kind, stock_id id, uint8_t *value,
             size_t *len);

/* A move at time_us, in steps: begin (the first step), put each entity
 * (core_cold.put), end each step with cold_move_step, which commits what
 * it put (the first also drops the undo of moves no longer kept), and end the move with cold_move_commit (the last step: the move
 * count, and a sync of all) or cold_move_abort. A step's commit syncs its
 * pages but leaves the move unfinished; what the steps of an unfinished
 * move wrote is taken back by cold_move_abort, or by cold_rollback at the
 * next open after a crash. All of a move runs on one thread (the write
 * transaction of a step is that thread's); reads go on meanwhile and see
 * what the steps committed. With forget_before_us > 0 the move indexes
 * what it puts by move so that a later move can forget it, and, before it
 * puts anything, forgets what moves before that time put (each keeps its
 * key with an empty value, which core_thaw_op answers as forgotten):
 * cold_move_forget forgets up to keys_max keys a call, in the step's
 * transaction (*forgotten: the entities it forgot), and sets *done once
 * nothing is left (then end that step
 * with cold_move_step, so that what it forgot is committed at once and
 * readers never see part of it); its calls need no applier's role, since
 * nothing in memory changes. A put that fails (-1) fails the step and the
 * commit: abort then. A begin that fails leaves no move under way. */
stock_code cold_move_begin(cold *store, int64_t time_us, int64_t forget_before_us,
                           char *message, size_t size);
stock_code cold_move_forget(cold *store, uint64_t keys_max, bool *done, uint64_t *forgotten,
                            char *message, size_t size);
int cold_move_put(void *store, core_cold_kind kind, stock_id id,
                  const uint8_t *value, size_t len);
stock_code cold_move_step(cold *store, char *message, size_t size);
stock_code cold_move_commit(cold *store, char *message, size_t size);
stock_code cold_move_abort(cold *store, char *message, size_t size);

/* Copies the cold store, compacted, into COLD_FILE in the folder dest_fd,
 * synced (*bytes its size): LMDB's mdb_env_copyfd2 with MDB_CP_COMPACT,
 * a consistent copy of its newest committed transaction, taken while
 * moves go on. A backup holds it beside a snapshot that goes with at least
 * moves_at_point - 1 moves (the count at the backup's point: a move waits
 * for the snapshot of the one before), and its open takes the copy back
 * to that snapshot's moves (cold_rollback): so the copy must hold at most
 * COLD_UNDO_MOVES moves past moves_at_point - 1, which is checked
 * (STOCK_IO saying so, when moves went on that fast). Any thread, at once
 * with a move. */
stock_code cold_copy(cold *store, int dest_fd, uint64_t moves_at_point, uint64_t *bytes,
                     char *message, size_t size);

/* Takes back an unfinished move (*unfinished says whether there was one),
 * then every move after `moves` (a snapshot's): STOCK_OK; STOCK_CORRUPT
 * when one of them has no undo kept (or the store has fewer moves than the
 * snapshot knows of); STOCK_IO. */
stock_code cold_rollback(cold *store, uint64_t moves, bool *unfinished, char *message,
                         size_t size);

#endif /* STOCK_EMBEDDED_COLD_H */
