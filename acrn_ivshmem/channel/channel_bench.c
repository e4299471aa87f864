/*
 * The C side of acrn_ivshmem/channel/bench.py: each mode prints one line of
 * numbers that the Python script reads. Build (the script does it):
 *   cc -O2 -std=c99 -I acrn_ivshmem/channel acrn_ivshmem/channel/channel_bench.c
 *
 *   memcpy SIZE BYTES [SPAN]      copy SIZE-byte blocks from one block
 *                                 into a SPAN-byte buffer round (default
 *                                 2 MiB; SPAN = SIZE: cache-hot; SPAN =
 *                                 a ring's capacity: through a buffer the
 *                                 size of the ring): prints seconds
 *   handoff SIZE BYTES SPAN       no channel: a child process copies
 *                                 SIZE-byte blocks out of a SPAN-byte
 *                                 shared buffer that this one copies
 *                                 them into, round, one counter each way
 *                                 (the cross-core limit any ring meets):
 *                                 prints the child's seconds
 *   send FILE SIZE COUNT BATCH    peer 0 sends COUNT messages of SIZE
 *                                 bytes, publishing every BATCH
 *   recv FILE SIZE COUNT          peer 1 receives them (copying each
 *                                 out, releasing every 64): prints the
 *                                 seconds from the first to the last
 *   ping FILE COUNT ROLE [ME PEER]  64-byte ping-pong, ROLE 0 measures:
 *                                 prints the median and 99th percentile
 *                                 round trip in ns; with eventfds ME and
 *                                 PEER, waits on the doorbell
 *   sock KIND SIZE COUNT          a UNIX socket pair (KIND unix) or a
 *                                 pipe (KIND pipe) between two processes:
 *                                 prints seconds for COUNT messages
 *   sockping COUNT                64-byte ping-pong on a socket pair
 */
#define _GNU_SOURCE
#include "ivshmem_channel.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *map(const char *path, uint64_t *size)
{
    struct stat info;
    void *base;
    int fd = open(path, O_RDWR);
    if (fd < 0 || fstat(fd, &info) < 0) {
        perror(path);
        exit(1);
    }
    *size = (uint64_t)info.st_size;
    base = mmap(NULL, (size_t)info.st_size, PROT_READ | PROT_WRITE,
                MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    close(fd);
    return base;
}

static void open_peer(struct ivch_channel *ch, const char *path,
                      unsigned peer, uint64_t doorbell)
{
    uint64_t size;
    void *base = map(path, &size);
    int rc = ivch_open(ch, base, size, peer, NULL, doorbell, 1);
    if (rc) {
        fprintf(stderr, "ivch_open: %s\n", ivch_strerror(rc));
        exit(1);
    }
}

static void fail(const char *what, int rc)
{
    fprintf(stderr, "%s: %s\n", what, ivch_strerror(rc));
    exit(1);
}

static unsigned char block[1 << 21], out[1 << 21];

static int bench_memcpy(long size, double bytes, long span)
{
    double start, done = 0;
    long at = 0;
    unsigned char *to = span > (long)sizeof out ? malloc((size_t)span) : out;
    if (!to || size > span || size > (long)sizeof block)
        return 1;
    memset(to, 0, (size_t)span); /* the pages exist before the clock runs */
    start = now();
    while (done < bytes) {
        if (at + size > span)
            at = 0;
        memcpy(to + at, block, (size_t)size);
        at += size;
        done += (double)size;
    }
    printf("%.9f %u\n", now() - start, (unsigned)to[size / 2]);
    return 0;
}

/* A full or empty ring: spin, and let others run now and then (the
 * machine may have fewer free CPUs than the two processes want). */
static void idle(long *spins)
{
    if (++*spins % 1024 == 0)
        sched_yield();
}

static int bench_handoff(long size, double bytes, long span)
{
    long slots = size > 0 ? span / size : 0, count, i, spins = 0;
    unsigned char *shared;
    uint64_t *written, *taken;
    pid_t child;
    if (slots < 1 || size > (long)sizeof block)
        return 1;
    count = (long)(bytes / (double)size);
    shared = mmap(NULL, (size_t)span + 256, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        return 1;
    memset(shared, 0, (size_t)span + 256);
    written = ivch_word_(shared, (uint32_t)span);
    taken = ivch_word_(shared, (uint32_t)span + 128);
    child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        double start = 0;
        for (i = 0; i < count; i++) {
            while (IVCH_LOAD(written) <= (uint64_t)i)
                idle(&spins);
            if (!i)
                start = now();
            memcpy(out, shared + (i % slots) * size, (size_t)size);
            IVCH_STORE(taken, (uint64_t)i + 1);
        }
        printf("%.9f\n", now() - start);
        exit(0);
    }
    for (i = 0; i < count; i++) {
        while ((uint64_t)i >= IVCH_LOAD(taken) + (uint64_t)slots)
            idle(&spins);
        memcpy(shared + (i % slots) * size, block, (size_t)size);
        IVCH_STORE(written, (uint64_t)i + 1);
    }
    waitpid(child, NULL, 0);
    return 0;
}

static int bench_send(const char *path, uint32_t size, long count,
                      long batch)
{
    struct ivch_channel ch;
    long sent = 0, staged = 0, spins = 0;
    open_peer(&ch, path, 0, 0);
    while (sent < count) {
        int rc = ivch_write(&ch, block, size);
        if (rc == IVCH_OK) {
            sent++;
            if (++staged >= batch) {
                ivch_publish(&ch);
                staged = 0;
            }
        } else if (rc == IVCH_AGAIN) {
            ivch_publish(&ch);
            staged = 0;
            idle(&spins);
        } else {
            fail("ivch_write", rc);
        }
    }
    ivch_publish(&ch);
    ivch_close(&ch);
    return 0;
}

static int bench_recv(const char *path, uint32_t size, long count)
{
    struct ivch_channel ch;
    long got = 0, unreleased = 0, spins = 0;
    /* Small messages: release every 64; large ones: each at once, so
     * that the writer refills while this side copies. */
    long every = size >= 4096 ? 1 : 64;
    double start = 0;
    open_peer(&ch, path, 1, 0);
    while (got < count) {
        const void *message;
        uint32_t length;
        int rc = ivch_peek(&ch, &message, &length);
        if (rc == IVCH_OK) {
            if (!got)
                start = now();
            if (length != size)
                fail("length", IVCH_ECORRUPT);
            memcpy(out, message, length);
            got++;
            if (++unreleased >= every) {
                ivch_release(&ch);
                unreleased = 0;
            }
        } else if (rc == IVCH_AGAIN) {
            ivch_release(&ch);
            unreleased = 0;
            idle(&spins);
        } else if (rc != IVCH_EPOCH) {
            fail("ivch_peek", rc);
        }
    }
    ivch_release(&ch);
    printf("%.9f\n", now() - start);
    ivch_close(&ch);
    return 0;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Wait for a message: spin, or announce the wait and read the eventfd. */
static void wait_message(struct ivch_channel *ch, int me)
{
    uint64_t value;
    long spins = 0;
    while (!ivch_poll(ch)) {
        if (me < 0) {
            idle(&spins);
            continue;
        }
        if (!ivch_wait_begin(ch, IVCH_WAIT_DATA)) {
            if (read(me, &value, sizeof value) < 0)
                fail("read eventfd", IVCH_EINVAL);
        }
        ivch_wait_end(ch);
    }
}

static int bench_ping(const char *path, long count, unsigned role, int me,
                      int peer)
{
    struct ivch_channel ch;
    unsigned char message[64];
    uint32_t length;
    double *trips = malloc((size_t)count * sizeof *trips);
    uint64_t one = 1;
    long i;
    open_peer(&ch, path, role, me < 0 ? 0 : IVCH_DOORBELL_PRESENT);
    /* Both attached before the first ping. */
    while (ivch_peer_state(&ch, NULL) != IVCH_ATTACHED)
        ;
    for (i = 0; i < count + 1; i++) {
        double start = now();
        int rc;
        if (role == 0) {
            if ((rc = ivch_send(&ch, message, 64)) != IVCH_OK)
                fail("ivch_send", rc);
            if (me >= 0 && ivch_should_ring(&ch, IVCH_WAIT_DATA) &&
                write(peer, &one, sizeof one) < 0)
                fail("write eventfd", IVCH_EINVAL);
        }
        do {
            wait_message(&ch, me);
            rc = ivch_recv(&ch, message, sizeof message, &length);
        } while (rc == IVCH_EPOCH);
        if (rc != IVCH_OK)
            fail("ivch_recv", rc);
        if (role == 1) {
            if ((rc = ivch_send(&ch, message, 64)) != IVCH_OK)
                fail("ivch_send", rc);
            if (me >= 0 && ivch_should_ring(&ch, IVCH_WAIT_DATA) &&
                write(peer, &one, sizeof one) < 0)
                fail("write eventfd", IVCH_EINVAL);
        } else if (i > 0) {
            trips[i - 1] = now() - start;
        }
    }
    if (role == 0) {
        qsort(trips, (size_t)count, sizeof *trips, compare);
        printf("%.0f %.0f\n", trips[count / 2] * 1e9,
               trips[count * 99 / 100] * 1e9);
    }
    ivch_close(&ch);
    return 0;
}

static int bench_sock(const char *kind, long size, long count)
{
    int fds[2], reader, writer;
    long i;
    pid_t child;
    double start;
    if (!strcmp(kind, "unix")) {
        if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds))
            return 1;
        writer = fds[0];
        reader = fds[1];
        if (size > 4096) {
            int buffer = 1 << 21;
            setsockopt(writer, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
            setsockopt(reader, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
        }
    } else {
        if (pipe(fds))
            return 1;
        reader = fds[0];
        writer = fds[1];
    }
    child = fork();
    if (child == 0) {
        long got = 0;
        close(writer);
        while (got < count * size) {
            ssize_t n = read(reader, out, (size_t)size);
            if (n <= 0)
                _exit(1);
            got += n;
        }
        _exit(0);
    }
    close(reader);
    start = now();
    for (i = 0; i < count; i++) {
        long done = 0;
        while (done < size) {
            ssize_t n = write(writer, block + done, (size_t)(size - done));
            if (n <= 0)
                return 1;
            done += n;
        }
    }
    waitpid(child, NULL, 0);
    printf("%.9f\n", now() - start);
    return 0;
}

static int bench_sockping(long count)
{
    int fds[2];
    long i;
    pid_t child;
    double *trips = malloc((size_t)count * sizeof *trips);
    unsigned char message[64];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds))
        return 1;
    child = fork();
    if (child == 0) {
        close(fds[0]);
        for (i = 0; i < count + 1; i++) {
            if (read(fds[1], message, 64) != 64 ||
                write(fds[1], message, 64) != 64)
                _exit(1);
        }
        _exit(0);
    }
    close(fds[1]);
    for (i = 0; i < count + 1; i++) {
        double start = now();
        if (write(fds[0], message, 64) != 64 ||
            read(fds[0], message, 64) != 64)
            return 1;
        if (i > 0)
            trips[i - 1] = now() - start;
    }
    waitpid(child, NULL, 0);
    qsort(trips, (size_t)count, sizeof *trips, compare);
    printf("%.0f %.0f\n", trips[count / 2] * 1e9,
           trips[count * 99 / 100] * 1e9);
    return 0;
}

int main(int argc, char **argv)
{
    memset(block, 0x5A, sizeof block);
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "memcpy"))
        return bench_memcpy(atol(argv[2]), atof(argv[3]),
                            argc == 5 ? atol(argv[4]) : (long)sizeof out);
    if (argc == 5 && !strcmp(argv[1], "handoff"))
        return bench_handoff(atol(argv[2]), atof(argv[3]), atol(argv[4]));
    if (argc == 6 && !strcmp(argv[1], "send"))
        return bench_send(argv[2], (uint32_t)atol(argv[3]), atol(argv[4]),
                          atol(argv[5]));
    if (argc == 5 && !strcmp(argv[1], "recv"))
        return bench_recv(argv[2], (uint32_t)atol(argv[3]), atol(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "ping"))
        return bench_ping(argv[2], atol(argv[3]), (unsigned)atoi(argv[4]),
                          -1, -1);
    if (argc == 7 && !strcmp(argv[1], "ping"))
        return bench_ping(argv[2], atol(argv[3]), (unsigned)atoi(argv[4]),
                          atoi(argv[5]), atoi(argv[6]));
    if (argc == 5 && !strcmp(argv[1], "sock"))
        return bench_sock(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc == 3 && !strcmp(argv[1], "sockping"))
        return bench_sockping(atol(argv[2]));
    fprintf(stderr, "usage: see the comment at the top of %s\n", __FILE__);
    return 2;
}
