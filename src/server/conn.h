/*
 * conn.h -- one client connection: reading into shared chunks, the queue of
 * replies owed (slots), and ordered, bounded writing.
 *
 * Replies never reorder. Each request read takes a slot at the tail of the
 * connection's queue: an op in a batch (its reply is rendered when the
 * batch completes), a reply made at once (kept as text in `deferred` while
 * earlier slots wait), or a reply that work off the loop thread makes
 * later (a conn_later: BACKUP). Replies are written from the head only, so
 * a later request in an earlier-completing batch waits for its turn.
 *
 * RESP requests are zero-copy: their ids point into the read chunk, and each
 * op slot holds a reference on that chunk until its reply is written.
 *
 * Everything is bounded: CONN_PENDING_MAX slots, CONN_OUTPUT_MAX bytes of
 * unwritten output, and --max-request-bytes of one request; past the first
 * two the connection simply stops reading until it drains. A client that
 * never reads its replies would then hold its output for ever: once a write
 * has made no progress for --idle-timeout, the connection is closed with a
 * log line (as Redis's client-output-buffer-limit does).
 */
#ifndef STOCK_SERVER_CONN_H
#define STOCK_SERVER_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "server/batch.h"
#include "server/server.h"

#define CONN_PENDING_MAX 4096          /* requests read and not answered */
#define CONN_SLOTS_INITIAL 32          /* reply slots of a new connection */
#define CONN_OUTPUT_MAX (1u << 20)     /* unwritten reply bytes before pausing */
#define CONN_CHUNK_BYTES (16u * 1024)  /* usual read chunk */
#define CONN_READ_MIN 4096u            /* least free space offered to a read */
#define CONN_FREE_CHUNKS_MAX 64        /* idle chunks the server keeps */
#define CONN_NAME_MAX 128              /* bytes of CLIENT SETNAME */
#define CONN_DISCARD_MAX (1u << 20)    /* input dropped after a rejection */

struct http_reader;
struct tls_session;

typedef enum conn_kind { CONN_RESP = 0, CONN_HTTP = 1 } conn_kind;

/*
 * A connection's life is one state, which only ever moves down the diagram
 * (conn_set_state in conn.c asserts each step):
 *
 *   OPEN ---------- conn_close_after_replies ----------> CLOSE_AFTER_REPLIES
 *    |              (QUIT, Connection: close,              |          |
 *    |               the server stopping)                  |          |
 *    | conn_reject (a protocol error, --maxclients,        |          |
 *    | the idle timeout)                      conn_reject  |          |
 *    v                                                     |          |
 *   SHUT_AFTER_REPLIES <-----------------------------------+          |
 *    |                                                                |
 *    | last reply written: the write side is shut                     | last reply
 *    v                                                                | written
 *   SHUT                                                              |
 *    |                                                                |
 *    | EOF, CONN_DISCARD_MAX bytes dropped, the server stopping       |
 *    v                                                                |
 *   CLOSING <---------------------------------------------------------+
 *    |        also conn_close from any state above: a failed read or
 *    |        write, out of memory, the shutdown grace running out
 *    | close callback
 *    v
 *   CLOSED
 *
 * A rejected client's write side is shut before closing so that it reads
 * its error reply: closing with its input unread would reset the reply away.
 */
typedef enum conn_state {
    CONN_OPEN = 0,             /* reads requests and answers them in order */
    CONN_CLOSE_AFTER_REPLIES,  /* reads nothing more; closes after the last reply */
    CONN_SHUT_AFTER_REPLIES,   /* reads nothing more; shuts after the last reply */
    CONN_SHUT,                 /* write side shut; what still arrives is dropped */
    CONN_CLOSING,              /* uv_close called */
    CONN_CLOSED                /* handle closed; freed once no slot, write or
                                * server list refers to the connection */
} conn_state;

/* What a connection does now and which server lists hold it, beside its
 * state: bits of conn.flags. */
enum conn_flag {
    CONN_READING = 1u << 0,     /* uv_read_start is in effect */
    CONN_WRITING = 1u << 1,     /* an uv_write of c->writing is in flight */
    CONN_ON_WAITING = 1u << 2,  /* on srv->waiting */
    CONN_ON_DIRTY = 1u << 3,    /* on srv->dirty */
    CONN_ON_HANDSHAKES = 1u << 4  /* on srv->handshakes: its TLS handshake
                                   * waits for a later loop turn */
};

/* A read buffer that requests borrow from; freed when refs drops to 0. */
typedef struct chunk {
    uint32_t refs;
    size_t cap;        /* bytes of data[] */
    size_t len;        /* bytes received */
    size_t parsed;     /* bytes consumed by the parser */
    struct chunk *next;  /* server's free list */
    char data[];
} chunk;

/* A reply made off the loop thread (BACKUP copies for seconds): its slot
 * holds back every reply after it until the loop thread has put the reply
 * into text and called conn_later_done. Owned by its slot. */
typedef struct conn_later {
    bool done;         /* text is the whole reply */
    buf text;
} conn_later;

/* One reply owed, in request order. */
typedef struct slot {
    batch *owner;      /* the op's batch; NULL for a text or later reply */
    conn_later *later; /* a reply made later, or NULL */
    uint32_t index;    /* the op in owner */
    uint16_t kind;     /* how to render it (commands.h / routes.h) */
    uint32_t text_len; /* text reply: bytes at the head of deferred */
    chunk *borrowed;   /* chunk the op's ids point into, or NULL */
    void *extra;       /* owned by the slot, free()d after rendering */
} slot;

typedef struct conn {
    uv_tcp_t tcp;
    server *srv;
    conn_kind kind;
    conn_state state;
    unsigned flags;        /* enum conn_flag */
    uint64_t id;
    chunk *in;
    buf out;               /* rendered, not yet handed to uv_write */
    buf writing;           /* in an uv_write now */
    struct tls_session *tls;  /* NULL on a plaintext connection */
    buf sealed;            /* TLS: out encrypted, not yet handed to uv_write */
    uv_write_t write_req;
    slot *slots;           /* ring of slot_cap (a power of 2 <= CONN_PENDING_MAX) */
    uint32_t slot_cap;
    uint32_t slot_head;
    uint32_t slot_count;
    buf deferred;          /* text replies waiting behind op slots */
    size_t deferred_head;
    size_t discarded;      /* bytes dropped in CONN_SHUT */
    uv_shutdown_t shutdown_req;
    struct conn *prev, *next, *dirty_next, *waiting_next, *handshake_next;
    uint64_t last_active_ms;
    char peer[AUTH_ADDRESS_MAX];  /* the client's address, for the log and limits */
    auth_role role;        /* what the client may do (RESP: after AUTH) */
    uint64_t write_progress_ms; /* a write began or finished: see conn_sweep_idle */
    /* RESP session */
    int proto;             /* 2 or 3 (HELLO) */
    bool stockproto;       /* STOCKPROTO 1: replies tell a replay */
    char name[CONN_NAME_MAX];
    /* HTTP session */
    struct http_reader *http;
    struct sse_stream *sse;    /* GET /v1/events streaming on c, or NULL (sse.h) */
} conn;

/* Accepts a client on listener (a RESP or HTTP port, over TLS if tls).
 * Logs and drops the client on failure; refuses it with an error reply
 * over --maxclients (a TLS client, which has no session yet, is closed). */
void conn_accept(server *srv, uv_stream_t *listener, conn_kind kind, bool tls);

/*
 * Appends an op for c to the gathering batch and a slot for its reply.
 * kind says how the reply is rendered; extra (may be NULL) is freed with the
 * slot; borrow says the op's ids point into c's current read chunk.
 * Returns the op (inputs zeroed) or NULL on out of memory (extra is then
 * freed). Only between conn_can_take() and the end of the loop turn.
 */
stock_op *conn_add_op(conn *c, uint16_t kind, void *extra, bool borrow);

/* Starts a reply made at once: returns the buffer to append it to and sets
 * *mark; finish with conn_reply_end(c, mark). */
buf *conn_reply_begin(conn *c, size_t *mark);
/* Ends a reply started with conn_reply_begin. False on out of memory. */
bool conn_reply_end(conn *c, size_t mark);

/* Takes a slot for a reply that work off the loop makes later: returns
 * its conn_later (not done, text empty), or NULL on out of memory. The
 * slot, and so c, lives until conn_later_done, even if c closes. */
conn_later *conn_add_later(conn *c);

/* later's text holds its reply: marks it done, then writes the replies now
 * ready (c may be freed, if it closed meanwhile). Loop thread only. */
void conn_later_done(conn *c, conn_later *later);

/* True if c may take one more request now (slots, output, batch room); if
 * only the batch is full, c waits on srv->waiting. */
bool conn_can_take(conn *c);

/* Renders the replies at the head of c's queue whose ops are complete. */
void conn_drain(conn *c);

/* Hands c's rendered output to uv_write unless a write is in flight. */
void conn_flush(conn *c);

/* Processes input already buffered, then reads again if c may. */
void conn_resume(conn *c);

/* Closes c now (replies still owed are dropped as their batches finish). */
void conn_close(conn *c);

/* Closes c once every reply owed is written; reads nothing more. */
void conn_close_after_replies(conn *c);

/* As conn_close_after_replies, for a client that broke the protocol: after
 * the last reply the write side is shut and input still arriving is dropped
 * (up to CONN_DISCARD_MAX bytes, or until the client closes or stays silent
 * for --idle-timeout),
 * so that closing with unread input does not reset the error reply away. */
void conn_reject(conn *c);

/* The server is stopping: c reads nothing more and closes once its replies
 * are written (a shut client has had its reply, so it closes now). */
void conn_stop(conn *c);

/* Closes connections idle longer than --idle-timeout; returns how many. */
uint32_t conn_sweep_idle(server *srv);

/* Advances the TLS handshakes deferred to this turn (at most
 * SERVER_HANDSHAKES_PER_TURN steps); true while some are left. */
bool conn_resume_handshakes(server *srv);

/* Frees the chunk free list (at exit). */
void conn_fini(server *srv);

#endif /* STOCK_SERVER_CONN_H */
