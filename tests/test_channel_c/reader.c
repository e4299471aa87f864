/*
 * Read every message of ring 0 of each region file given, as peer 1,
 * for the differential test in tests/test_channel_c.py. Each file is
 * copied into a heap block of its exact size, so that a sanitizer
 * build catches any read outside it. Prints, per file:
 *   open RC              when ivch_open fails, else
 *   msg EPOCH HEX        per message (HEX empty for an empty one), then
 *   end RC               the code that ended the reading (AGAIN or error)
 */
#include "ivshmem_channel.h"

#include <stdio.h>
#include <stdlib.h>

static unsigned char message[1 << 20];

static void read_one(const char *path)
{
    struct ivch_channel ch;
    FILE *file = fopen(path, "rb");
    unsigned char *region;
    long size;
    int rc;
    uint32_t length, i;
    if (!file || fseek(file, 0, SEEK_END) || (size = ftell(file)) < 0) {
        perror(path);
        exit(1);
    }
    rewind(file);
    region = malloc(size ? (size_t)size : 1);
    if (!region || fread(region, 1, (size_t)size, file) != (size_t)size) {
        perror(path);
        exit(1);
    }
    fclose(file);
    rc = ivch_open(&ch, region, (uint64_t)size, 1, NULL, 0, 1);
    if (rc) {
        printf("open %d\n", rc);
    } else {
        for (;;) {
            rc = ivch_recv(&ch, message, sizeof message, &length);
            if (rc == IVCH_EPOCH)
                continue;
            if (rc != IVCH_OK)
                break;
            printf("msg %llu ", (unsigned long long)ch.peer_epoch);
            for (i = 0; i < length; i++)
                printf("%02x", message[i]);
            printf("\n");
        }
        printf("end %d\n", rc);
    }
    free(region);
}

int main(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++)
        read_one(argv[i]);
    return 0;
}
