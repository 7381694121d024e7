/*
 * disk_floor.c -- the floor the disk puts under a durable reply: the
 * latency and rate of each durable-write primitive the log could use, one
 * write at a time and several in flight (docs/benchmarks.md, "The disk's
 * floor").
 *
 *   disk_floor [--dir FOLDER] [--seconds T] [--depth N]
 *   disk_floor -h|--help    (usage on stdout, status 0)
 *
 * Each primitive writes 4 KiB blocks (DISK_FLOOR_BLOCK) at advancing
 * offsets of one file, as the log appends, into FOLDER/disk-floor.tmp
 * (default "."), zero-filled and synced beforehand as the log's zeros
 * written ahead are (so no write grows the file), removed at the end. Each
 * runs T seconds (default 2) at depth 1 and at depth N (default 8): N
 * threads each doing one write at a time, or for io_uring one thread
 * keeping N writes in flight. A write's latency runs from its submission
 * to the moment it is durable. Primitives:
 *
 *   write+fdatasync     pwrite into the page cache, then fdatasync
 *   pwritev2 RWF_DSYNC  one buffered write that returns once durable
 *   O_DIRECT|O_DSYNC    a write that bypasses the page cache, durable on return
 *   uring write+fsync   IORING_OP_WRITE linked to IORING_OP_FSYNC (datasync)
 *   uring RWF_DSYNC     IORING_OP_WRITE with RWF_DSYNC, buffered
 *   uring O_DIRECT      IORING_OP_WRITE on an O_DIRECT|O_DSYNC descriptor
 *
 * Prints per primitive and depth: writes done, writes/s, and the median,
 * p99 and longest latency in microseconds. Wall-clock figures on a shared
 * machine: run it several times.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define DISK_FLOOR_BLOCK 4096u
/* The file the writes cycle through: large enough that a run's writes
 * spread over many blocks, small enough to zero-fill in a moment. */
#define DISK_FLOOR_FILE_BYTES (64u << 20)
#define DISK_FLOOR_DEPTH_MAX 64u
/* Latencies kept per thread (beyond it the run still counts writes). */
#define DISK_FLOOR_SAMPLES_MAX (1u << 20)

enum primitive {
    PRIMITIVE_WRITE_FDATASYNC,
    PRIMITIVE_PWRITEV2_DSYNC,
    PRIMITIVE_DIRECT_DSYNC,
    PRIMITIVE_URING_WRITE_FSYNC,
    PRIMITIVE_URING_DSYNC,
    PRIMITIVE_URING_DIRECT,
    PRIMITIVE_COUNT
};

static const char *const primitive_names[PRIMITIVE_COUNT] = {
    "write+fdatasync",   "pwritev2 RWF_DSYNC", "O_DIRECT|O_DSYNC",
    "uring write+fsync", "uring RWF_DSYNC",    "uring O_DIRECT",
};

typedef struct {
    const char *path;
    enum primitive primitive;
    double seconds;
    atomic_uint_fast64_t next_block; /* shared: the log's append position */
} run;

typedef struct {
    run *shared;
    uint64_t *samples_us;
    size_t samples;
    uint64_t writes;
    const char *error; /* what failed, or NULL */
} worker;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static off_t next_offset(run *shared)
{
    uint64_t block = atomic_fetch_add(&shared->next_block, 1);
    return (off_t)((block * DISK_FLOOR_BLOCK) % DISK_FLOOR_FILE_BYTES);
}

static bool direct_of(enum primitive primitive)
{
    return primitive == PRIMITIVE_DIRECT_DSYNC || primitive == PRIMITIVE_URING_DIRECT;
}

static int open_for(const run *shared)
{
    int flags = O_WRONLY | O_CLOEXEC;
    if (direct_of(shared->primitive))
        flags |= O_DIRECT | O_DSYNC;
    return open(shared->path, flags);
}

static void record(worker *w, uint64_t started_ns)
{
    if (w->samples < DISK_FLOOR_SAMPLES_MAX)
        w->samples_us[w->samples++] = (now_ns() - started_ns) / 1000u;
    w->writes++;
}

/* One blocking durable write of the primitive; false on failure. */
static bool write_durably(int fd, enum primitive primitive, void *block, off_t offset)
{
    struct iovec iov = {.iov_base = block, .iov_len = DISK_FLOOR_BLOCK};
    switch (primitive) {
    case PRIMITIVE_WRITE_FDATASYNC:
        return pwrite(fd, block, DISK_FLOOR_BLOCK, offset) == DISK_FLOOR_BLOCK &&
               fdatasync(fd) == 0;
    case PRIMITIVE_PWRITEV2_DSYNC:
        return pwritev2(fd, &iov, 1, offset, RWF_DSYNC) == DISK_FLOOR_BLOCK;
    case PRIMITIVE_DIRECT_DSYNC:
        return pwrite(fd, block, DISK_FLOOR_BLOCK, offset) == DISK_FLOOR_BLOCK;
    default:
        return false;
    }
}

/* A thread doing one blocking durable write at a time until the deadline. */
static void *blocking_worker(void *argument)
{
    worker *w = argument;
    void *block = NULL;
    int fd = open_for(w->shared);
    if (fd < 0 || posix_memalign(&block, DISK_FLOOR_BLOCK, DISK_FLOOR_BLOCK) != 0) {
        w->error = "open or allocate";
        goto out;
    }
    memset(block, 'x', DISK_FLOOR_BLOCK);
    uint64_t deadline_ns = now_ns() + (uint64_t)(w->shared->seconds * 1e9);
    while (now_ns() < deadline_ns) {
        uint64_t started_ns = now_ns();
        if (!write_durably(fd, w->shared->primitive, block, next_offset(w->shared))) {
            w->error = strerror(errno);
            break;
        }
        record(w, started_ns);
    }
out:
    free(block);
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Queues one durable write in slot; its user data is the slot. */
static void uring_queue(struct io_uring *ring, int fd, run *shared, void *block,
                        unsigned slot)
{
    off_t offset = next_offset(shared);
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_write(sqe, fd, block, DISK_FLOOR_BLOCK, (uint64_t)offset);
    if (shared->primitive == PRIMITIVE_URING_DSYNC)
        sqe->rw_flags = RWF_DSYNC;
    if (shared->primitive != PRIMITIVE_URING_WRITE_FSYNC) {
        io_uring_sqe_set_data64(sqe, slot);
        return;
    }
    /* The write's own completion is dropped: the slot ends with the fsync. */
    io_uring_sqe_set_data64(sqe, UINT64_MAX);
    sqe->flags |= IOSQE_IO_LINK;
    sqe = io_uring_get_sqe(ring);
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, slot);
}

/* One thread keeping depth writes in flight through io_uring. */
static void uring_run(worker *w, unsigned depth)
{
    struct io_uring ring;
    void *blocks = NULL;
    uint64_t started_ns[DISK_FLOOR_DEPTH_MAX];
    int fd = open_for(w->shared);
    if (fd < 0 || io_uring_queue_init(2 * depth, &ring, 0) != 0) {
        w->error = "open or io_uring_queue_init";
        if (fd >= 0)
            close(fd);
        return;
    }
    if (posix_memalign(&blocks, DISK_FLOOR_BLOCK, (size_t)depth * DISK_FLOOR_BLOCK) != 0) {
        w->error = "allocate";
        goto out;
    }
    memset(blocks, 'x', (size_t)depth * DISK_FLOOR_BLOCK);
    uint64_t deadline_ns = now_ns() + (uint64_t)(w->shared->seconds * 1e9);
    for (unsigned slot = 0; slot < depth; slot++) {
        started_ns[slot] = now_ns();
        uring_queue(&ring, fd, w->shared, (char *)blocks + slot * DISK_FLOOR_BLOCK, slot);
    }
    io_uring_submit(&ring);
    unsigned in_flight = depth;
    while (in_flight > 0) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&ring, &cqe) != 0) {
            w->error = "io_uring_wait_cqe";
            break;
        }
        uint64_t slot = io_uring_cqe_get_data64(cqe);
        int result = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
        if (result < 0 && !w->error)
            w->error = strerror(-result);
        if (slot == UINT64_MAX)
            continue;
        record(w, started_ns[slot]);
        in_flight--;
        if (w->error || now_ns() >= deadline_ns)
            continue;
        started_ns[slot] = now_ns();
        uring_queue(&ring, fd, w->shared, (char *)blocks + slot * DISK_FLOOR_BLOCK,
                    (unsigned)slot);
        io_uring_submit(&ring);
        in_flight++;
    }
out:
    free(blocks);
    io_uring_queue_exit(&ring);
    close(fd);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Runs one primitive at one depth and prints its row; false on failure. */
static bool measure(const char *path, enum primitive primitive, unsigned depth,
                    double seconds)
{
    run shared = {.path = path, .primitive = primitive, .seconds = seconds};
    bool uring = primitive >= PRIMITIVE_URING_WRITE_FSYNC;
    unsigned workers = uring ? 1 : depth;
    worker w[DISK_FLOOR_DEPTH_MAX] = {0};
    pthread_t threads[DISK_FLOOR_DEPTH_MAX];
    for (unsigned i = 0; i < workers; i++) {
        w[i].shared = &shared;
        w[i].samples_us = malloc(DISK_FLOOR_SAMPLES_MAX * sizeof(uint64_t));
        if (!w[i].samples_us) {
            fprintf(stderr, "disk_floor: out of memory\n");
            exit(1);
        }
    }
    uint64_t started_ns = now_ns();
    if (uring) {
        uring_run(&w[0], depth);
    } else {
        for (unsigned i = 0; i < workers; i++)
            pthread_create(&threads[i], NULL, blocking_worker, &w[i]);
        for (unsigned i = 0; i < workers; i++)
            pthread_join(threads[i], NULL);
    }
    double elapsed_s = (double)(now_ns() - started_ns) / 1e9;
    size_t total = 0;
    uint64_t writes = 0;
    const char *error = NULL;
    for (unsigned i = 0; i < workers; i++) {
        total += w[i].samples;
        writes += w[i].writes;
        error = error ? error : w[i].error;
    }
    uint64_t *all = malloc((total ? total : 1) * sizeof(uint64_t));
    size_t at = 0;
    for (unsigned i = 0; i < workers && all; i++) {
        memcpy(all + at, w[i].samples_us, w[i].samples * sizeof(uint64_t));
        at += w[i].samples;
        free(w[i].samples_us);
    }
    if (!all) {
        fprintf(stderr, "disk_floor: out of memory\n");
        exit(1);
    }
    if (error || total == 0) {
        printf("%-19s %5u  failed: %s\n", primitive_names[primitive], depth,
               error ? error : "no write completed");
        free(all);
        return false;
    }
    qsort(all, total, sizeof(uint64_t), compare_u64);
    printf("%-19s %5u %9" PRIu64 " %10.0f %9" PRIu64 " %9" PRIu64 " %9" PRIu64 "\n",
           primitive_names[primitive], depth, writes, (double)writes / elapsed_s,
           all[total / 2], all[total * 99 / 100], all[total - 1]);
    fflush(stdout);
    free(all);
    return true;
}

/* Creates path zero-filled to DISK_FLOOR_FILE_BYTES and synced. */
static bool prepare(const char *path)
{
    static char zeros[1u << 20];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    bool ok = true;
    for (size_t at = 0; ok && at < DISK_FLOOR_FILE_BYTES; at += sizeof zeros)
        ok = write(fd, zeros, sizeof zeros) == (ssize_t)sizeof zeros;
    ok = ok && fsync(fd) == 0;
    close(fd);
    return ok;
}

static void usage(FILE *out, int status)
{
    fprintf(out, "usage: disk_floor [--dir FOLDER] [--seconds T] [--depth N]\n"
                 "  each durable-write primitive, 4 KiB writes into a zero-filled file in\n"
                 "  FOLDER (default .), T seconds (default 2) at depth 1 and N (default 8,\n"
                 "  at most 64); prints writes/s and latency (us): median, p99, longest\n");
    exit(status);
}

int main(int argc, char **argv)
{
    const char *dir = ".";
    double seconds = 2;
    unsigned depth = 8;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            usage(stdout, 0);
        if (i + 1 >= argc)
            usage(stderr, 2);
        if (strcmp(argv[i], "--dir") == 0)
            dir = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--depth") == 0)
            depth = (unsigned)atoi(argv[++i]);
        else
            usage(stderr, 2);
    }
    if (seconds <= 0 || seconds > 600 || depth < 1 || depth > DISK_FLOOR_DEPTH_MAX)
        usage(stderr, 2);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/disk-floor.tmp", dir) >= (int)sizeof path)
        usage(stderr, 2);
    if (!prepare(path)) {
        fprintf(stderr, "disk_floor: cannot prepare %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("%-19s %5s %9s %10s %9s %9s %9s\n", "primitive", "depth", "writes", "writes/s",
           "p50 us", "p99 us", "max us");
    bool ok = true;
    for (int p = 0; p < PRIMITIVE_COUNT; p++) {
        ok = measure(path, (enum primitive)p, 1, seconds) && ok;
        if (depth > 1)
            ok = measure(path, (enum primitive)p, depth, seconds) && ok;
    }
    unlink(path);
    return ok ? 0 : 1;
}
