/*
 * Torn-counter check for tests/test_channel_c.py on the 8-byte word at
 * offset 0x200 of FILE (ring 0's head).
 *   torn write FILE SECONDS   store i * 0x0001000100010001 for i = 1, 2...
 *   torn read FILE SECONDS    load it; every value must be such a multiple
 * The multiples have four equal 16-bit quarters, so a value assembled
 * from two stores (a torn load or store) shows unequal quarters.
 * Prints the number of stores or loads (and of torn values, for read).
 */
#define _POSIX_C_SOURCE 200809L
#include "ivshmem_channel.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int fd;
    unsigned char *base;
    uint64_t *word, count = 0, torn = 0, i = 0;
    double end;
    if (argc != 4)
        return 2;
    fd = open(argv[2], O_RDWR);
    base = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd < 0 || base == MAP_FAILED)
        return 1;
    word = ivch_word_(base, 0x200);
    end = now() + atof(argv[3]);
    if (!strcmp(argv[1], "write")) {
        while (now() < end) {
            int k;
            for (k = 0; k < 4096; k++)
                IVCH_STORE(word, (++i & 0xFFFF) * 0x0001000100010001ull);
            count += 4096;
        }
        printf("%llu\n", (unsigned long long)count);
        return 0;
    }
    while (now() < end) {
        int k;
        for (k = 0; k < 4096; k++) {
            uint64_t v = IVCH_LOAD(word);
            if (v != (v & 0xFFFF) * 0x0001000100010001ull)
                torn++;
        }
        count += 4096;
    }
    printf("%llu %llu\n", (unsigned long long)count,
           (unsigned long long)torn);
    return 0;
}
