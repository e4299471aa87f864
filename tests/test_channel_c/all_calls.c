/*
 * Every function of ivshmem_channel.h, called once, so that a strict or
 * freestanding compile of this file covers the whole header
 * (tests/test_channel_c.py).
 */
#include "ivshmem_channel.h"

int all_calls(void *base, uint64_t size, unsigned char *buffer,
              uint32_t capacity);

int all_calls(void *base, uint64_t size, unsigned char *buffer,
              uint32_t capacity)
{
    struct ivch_channel ch;
    uint64_t ring[4], epoch;
    const void *message;
    void *payload;
    uint32_t length;
    char name[IVCH_NAME_SIZE];
    int rc = ivch_init(base, size, "all", 0);
    rc |= ivch_check_header(base, size, ring, name);
    rc |= (int)ivch_slot_heartbeat(base, 0);
    rc |= ivch_open(&ch, base, size, 0, "all", 0, 1);
    rc |= ivch_write(&ch, buffer, capacity);
    ivch_publish(&ch);
    rc |= ivch_send(&ch, buffer, capacity);
    rc |= ivch_reserve(&ch, capacity, &payload);
    rc |= ivch_commit(&ch, capacity);
    rc |= ivch_should_ring(&ch, IVCH_WAIT_DATA);
    rc |= ivch_peek(&ch, &message, &length);
    ivch_release(&ch);
    rc |= ivch_recv(&ch, buffer, capacity, &length);
    if (ivch_wait_begin(&ch, IVCH_WAIT_ROOM))
        rc |= 1;
    ivch_wait_end(&ch);
    rc |= (int)ivch_peer_state(&ch, &epoch);
    rc |= (int)ivch_peer_doorbell(&ch);
    ivch_heartbeat(&ch);
    ivch_close(&ch);
    return rc + (int)ivch_strerror(rc)[0];
}
