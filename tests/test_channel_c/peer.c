/*
 * A C peer of a channel in a file, for tests/test_channel_c.py.
 *
 *   peer init FILE NAME            write a fresh header (ivch_init)
 *   peer send FILE PEER MSG...     open, send each MSG, close (every
 *                                  second one through ivch_reserve, 5
 *                                  bytes more than it needs, and
 *                                  ivch_commit)
 *   peer rules FILE PEER           the rules of ivch_reserve and
 *                                  ivch_commit (each refusal's return
 *                                  code), then sends "abc" through them
 *   peer echo FILE PEER N K        answer N messages with 'E' + the
 *                                  message reversed (written straight
 *                                  into the ring: ivch_reserve), while
 *                                  sending K messages 'G' + gen(i);
 *                                  then close
 *
 * Exit status 0, or 1 with the failing call on stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include "ivshmem_channel.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s (%d)\n", what, ivch_strerror(rc), rc);
        exit(1);
    }
}

static void pause_briefly(void)
{
    struct timespec wait = {0, 20000};
    nanosleep(&wait, NULL);
}

/* The i-th generated message: 'G', then 1 + i * 7919 % 3000 bytes. */
static uint32_t gen(uint32_t i, unsigned char *out)
{
    uint32_t length = 1 + (i * 7919u) % 3000u, k;
    out[0] = 'G';
    for (k = 0; k < length; k++)
        out[1 + k] = (unsigned char)(i + k);
    return length + 1;
}

static unsigned char in[1 << 16];

int main(int argc, char **argv)
{
    struct ivch_channel ch;
    uint64_t size;
    void *base;
    if (argc == 4 && !strcmp(argv[1], "init")) {
        base = map(argv[2], &size);
        check(ivch_init(base, size, argv[3], 0), "ivch_init");
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "send")) {
        int i;
        base = map(argv[2], &size);
        check(ivch_open(&ch, base, size, (unsigned)atoi(argv[3]), NULL, 0, 0),
              "ivch_open");
        for (i = 4; i < argc; i++) {
            uint32_t length = (uint32_t)strlen(argv[i]), room = length + 5;
            void *at = NULL;
            int rc;
            if (i % 2 == 0) {
                check(ivch_send(&ch, argv[i], length), "ivch_send");
                continue;
            }
            if (room > ch.tx.max_message)
                room = (uint32_t)ch.tx.max_message;
            rc = ivch_reserve(&ch, room, &at);
            check(rc, "ivch_reserve");
            if (rc != IVCH_OK || !at) {
                fprintf(stderr, "ivch_reserve: %s\n", ivch_strerror(rc));
                return 1;
            }
            memcpy(at, argv[i], length);
            check(ivch_commit(&ch, length), "ivch_commit");
            ivch_publish(&ch);
        }
        ivch_close(&ch);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "rules")) {
        void *at = NULL;
        base = map(argv[2], &size);
        check(ivch_open(&ch, base, size, (unsigned)atoi(argv[3]), NULL, 0, 0),
              "ivch_open");
        if (ivch_commit(&ch, 0) != IVCH_EINVAL ||
            ivch_reserve(&ch, (uint32_t)ch.tx.max_message + 1, &at) !=
                IVCH_ETOOBIG ||
            ivch_reserve(&ch, 10, &at) != IVCH_OK || !at ||
            ivch_write(&ch, "x", 1) != IVCH_EINVAL ||
            ivch_reserve(&ch, 1, &at) != IVCH_EINVAL ||
            ivch_commit(&ch, 11) != IVCH_EINVAL) {
            fprintf(stderr, "a rule of ivch_reserve/ivch_commit broken\n");
            return 1;
        }
        memcpy(at, "abc", 3);
        check(ivch_commit(&ch, 3), "ivch_commit");
        if (ivch_commit(&ch, 0) != IVCH_EINVAL) {
            fprintf(stderr, "ivch_commit twice\n");
            return 1;
        }
        ivch_publish(&ch);
        ivch_close(&ch);
        return 0;
    }
    if (argc == 6 && !strcmp(argv[1], "echo")) {
        long echoed = 0, made = 0, n = atol(argv[4]), k = atol(argv[5]);
        uint32_t length, pending = 0, i;
        base = map(argv[2], &size);
        check(ivch_open(&ch, base, size, (unsigned)atoi(argv[3]), NULL, 0, 0),
              "ivch_open");
        while (echoed < n || made < k || pending) {
            int progress = 0, rc;
            if (pending) {
                void *at = NULL;
                rc = ivch_reserve(&ch, pending, &at);
                check(rc, "ivch_reserve (echo)");
                if (rc == IVCH_OK && at) {
                    unsigned char *to = (unsigned char *)at;
                    to[0] = 'E';
                    for (i = 0; i + 1 < pending; i++)
                        to[1 + i] = in[pending - 2 - i];
                    check(ivch_commit(&ch, pending), "ivch_commit (echo)");
                    ivch_publish(&ch);
                    pending = 0;
                    echoed++;
                    progress = 1;
                }
            } else if (echoed < n) {
                rc = ivch_recv(&ch, in, sizeof in, &length);
                check(rc, "ivch_recv");
                if (rc == IVCH_OK) {
                    pending = length + 1;
                    progress = 1;
                } else if (rc == IVCH_EPOCH) {
                    progress = 1;
                }
            }
            if (made < k) {
                unsigned char message[3002];
                rc = ivch_send(&ch, message, gen((uint32_t)made, message));
                check(rc, "ivch_send (gen)");
                if (rc == IVCH_OK) {
                    made++;
                    progress = 1;
                }
            }
            if (!progress) {
                ivch_heartbeat(&ch);
                pause_briefly();
            }
        }
        ivch_close(&ch);
        return 0;
    }
    fprintf(stderr, "usage: peer init|send|rules|echo ...\n");
    return 2;
}
