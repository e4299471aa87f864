/*
 * ivshmem_channel.h - acrn-shm message channel, layout 1.0, header-only C99.
 *
 * The same on-memory format as the Python package acrn_ivshmem.channel
 * (docs/channel-format.md is the specification): a named header at offset
 * 0 of an ivshmem region, a state table of two peers, and two
 * single-producer/single-consumer rings of length-prefixed records, one
 * per direction. Peer p writes ring p and reads ring 1 - p.
 *
 * No allocation and nothing from libc but memcpy, so it builds for a
 * Linux program (map BAR2 through sysfs resource2, or a /dev/shm file on
 * the host) and for an RTOS guest such as Zephyr (ivshmem_get_mem()).
 * Nothing here waits: calls return IVCH_AGAIN and the program polls, or
 * blocks on its doorbell (ivch_wait_begin, ivch_should_ring).
 *
 *   struct ivch_channel ch;
 *   int rc = ivch_open(&ch, base, size, 0, "ring", 0, 0);
 *   rc = ivch_send(&ch, "hello", 5);          (IVCH_AGAIN: ring full)
 *   rc = ivch_recv(&ch, buf, sizeof buf, &len);  (IVCH_AGAIN: empty)
 *   rc = ivch_reserve(&ch, 100, &at);  fill at[0..n), then
 *   ivch_commit(&ch, n); ivch_publish(&ch);  (a send with no copy)
 *   ivch_close(&ch);
 *
 * Memory ordering. Every counter and state word is one aligned 8-byte
 * load or store, never torn. The writer copies a record, then stores the
 * ring's head with release semantics: the commit point. The reader loads
 * head with acquire semantics before it reads the records below it, and
 * stores tail with release semantics after it has copied them. How
 * (IVCH_ORDERING, chosen below unless defined):
 *   1  GCC/Clang __atomic builtins (C99 mode included): any CPU.
 *   2  C11 <stdatomic.h> fences around volatile 8-byte accesses.
 *   3  GCC-compatible compiler on x86-64 without either: volatile 8-byte
 *      accesses (one mov each), compiler barriers, and x86-64's total
 *      store order; __sync_synchronize() for the full fence.
 *
 * Every value read from shared memory is checked before use: a corrupted
 * or hostile region gives IVCH_ECORRUPT, never a read or write outside the
 * region, and every call ends after a bounded number of steps.
 */
#ifndef IVSHMEM_CHANNEL_H
#define IVSHMEM_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h> /* memcpy, the only libc function used */

/* "IVSHMCHN", the first 8 bytes of a region, as a little-endian word. */
#define IVCH_MAGIC 0x4E48434D48535649ull
#define IVCH_VERSION_MAJOR 1u
#define IVCH_VERSION_MINOR 0u
#define IVCH_HEADER_SIZE 0x1000u
#define IVCH_HEADER_BYTES 0x100u
#define IVCH_CRC_AT 0xFCu
#define IVCH_NAME_SIZE 64u
#define IVCH_PEERS 2u
#define IVCH_RING_ALIGN 64u
#define IVCH_MIN_RING 256u
#define IVCH_MIN_REGION (IVCH_HEADER_SIZE + 2u * IVCH_MIN_RING)
#define IVCH_RECORD_HEADER 8u

/* Record kinds. */
#define IVCH_MESSAGE 1u
#define IVCH_WRAP 2u
#define IVCH_EPOCH_RECORD 3u
#define IVCH_BATCH 4u

/* Peer states (low byte of a slot's status word; the epoch is above). */
#define IVCH_FREE 0u
#define IVCH_ATTACHED 1u
#define IVCH_DETACHED 2u

/* Bits of a slot's waiting word, and the doorbell word's presence bit. */
#define IVCH_WAIT_DATA 1u
#define IVCH_WAIT_ROOM 2u
#define IVCH_DOORBELL_PRESENT ((uint64_t)1 << 32)

/* Return codes: 0 and above are not errors. */
#define IVCH_OK 0
#define IVCH_AGAIN 1     /* ring full (send) or empty (receive) */
#define IVCH_EPOCH 2     /* passed an EPOCH record: ch->peer_epoch is new */
#define IVCH_ENOHEADER (-1) /* no channel magic: not initialised */
#define IVCH_EVERSION (-2)  /* another major layout version */
#define IVCH_ECORRUPT (-3)  /* the region breaks the format */
#define IVCH_EINVAL (-4)    /* bad argument (peer, name, size) */
#define IVCH_ETOOBIG (-5)   /* message too long, or buffer too small */
#define IVCH_ENAME (-6)     /* the region holds another channel */
#define IVCH_EBUSY (-7)     /* the peer's slot is attached */
#define IVCH_ECLOSED (-8)   /* the channel is closed */

#ifndef IVCH_ORDERING
#if defined(__ATOMIC_ACQUIRE)
#define IVCH_ORDERING 1
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && \
    !defined(__STDC_NO_ATOMICS__)
#define IVCH_ORDERING 2
#elif defined(__GNUC__) && defined(__x86_64__)
#define IVCH_ORDERING 3
#else
#error "ivshmem_channel.h: no way to order memory; define IVCH_ORDERING"
#endif
#endif

#if IVCH_ORDERING == 1
#define IVCH_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define IVCH_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define IVCH_FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#elif IVCH_ORDERING == 2
#include <stdatomic.h>
static inline uint64_t ivch_load_(const uint64_t *p)
{
    uint64_t value = *(const volatile uint64_t *)p;
    atomic_thread_fence(memory_order_acquire);
    return value;
}
static inline void ivch_store_(uint64_t *p, uint64_t value)
{
    atomic_thread_fence(memory_order_release);
    *(volatile uint64_t *)p = value;
}
#define IVCH_LOAD(p) ivch_load_(p)
#define IVCH_STORE(p, v) ivch_store_((p), (v))
#define IVCH_FENCE() atomic_thread_fence(memory_order_seq_cst)
#elif IVCH_ORDERING == 3
static inline uint64_t ivch_load_(const uint64_t *p)
{
    uint64_t value = *(const volatile uint64_t *)p;
    __asm__ __volatile__("" ::: "memory");
    return value;
}
static inline void ivch_store_(uint64_t *p, uint64_t value)
{
    __asm__ __volatile__("" ::: "memory");
    *(volatile uint64_t *)p = value;
}
#define IVCH_LOAD(p) ivch_load_(p)
#define IVCH_STORE(p, v) ivch_store_((p), (v))
#define IVCH_FENCE() __sync_synchronize()
#else
#error "ivshmem_channel.h: IVCH_ORDERING must be 1, 2 or 3"
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ivshmem_channel.h: the layout is little-endian; so must the CPU be"
#endif

/* One direction. For the writer, pos is its head, shared the head last
 * published and seen the reader's tail as last loaded; for the reader,
 * pos is its tail, shared the tail last released and seen the head.
 * Inside a BATCH record the reader keeps pos at the record's start and
 * walks it with batch_left (messages to go), batch_table (offset of the
 * next length) and batch_at (offset of the next message). */
struct ivch_ring {
    unsigned char *data;
    uint64_t capacity;
    uint64_t *head;
    uint64_t *tail;
    uint64_t pos;
    uint64_t shared;
    uint64_t seen;
    uint64_t max_message;
    uint64_t batch_left;
    uint64_t batch_table;
    uint64_t batch_at;
    uint64_t batch_end;
};

struct ivch_channel {
    unsigned char *base;
    uint64_t size;
    unsigned peer;
    int error;            /* IVCH_ECORRUPT once broken, IVCH_ECLOSED */
    int marker_pending;   /* this epoch's EPOCH record is not written yet */
    int reserving;        /* ivch_reserve gave room, ivch_commit is due */
    uint32_t reserved;    /* the length that room holds */
    uint64_t epoch;       /* this side's epoch */
    uint64_t peer_epoch;  /* epoch of the writer of the last message read */
    uint64_t *own;        /* this peer's slot: status, heartbeat, ... */
    uint64_t *other;      /* the other peer's slot */
    struct ivch_ring tx;  /* ring `peer` */
    struct ivch_ring rx;  /* ring `1 - peer` */
    char name[IVCH_NAME_SIZE];
};

/* Slot words (index into ch->own / ch->other). */
#define IVCH_SLOT_STATUS 0
#define IVCH_SLOT_HEARTBEAT 1
#define IVCH_SLOT_DOORBELL 2
#define IVCH_SLOT_WAITING 3

/* -- little helpers ----------------------------------------------------- */

static inline uint32_t ivch_get32_(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t ivch_get64_(const unsigned char *p)
{
    return (uint64_t)ivch_get32_(p) | (uint64_t)ivch_get32_(p + 4) << 32;
}

static inline void ivch_put32_(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline void ivch_put64_(unsigned char *p, uint64_t v)
{
    ivch_put32_(p, (uint32_t)v);
    ivch_put32_(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t *ivch_word_(unsigned char *base, uint32_t offset)
{
    return (uint64_t *)(void *)(base + offset);
}

static inline const uint64_t *ivch_cword_(const unsigned char *base,
                                          uint32_t offset)
{
    return (const uint64_t *)(const void *)(base + offset);
}

/* CRC-32 (ISO-HDLC, as zlib's crc32), bitwise: only the header uses it. */
static inline uint32_t ivch_crc32_(const unsigned char *p, uint32_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    uint32_t i;
    int bit;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* 1 when name[0..len) is 1 to 63 bytes of strict UTF-8 (RFC 3629) with no
 * control character (U+0000-U+001F, U+007F-U+009F). */
static inline int ivch_name_ok_(const unsigned char *s, uint32_t len)
{
    uint32_t i = 0;
    if (len < 1 || len >= IVCH_NAME_SIZE)
        return 0;
    while (i < len) {
        uint32_t c = s[i], need, code, k;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F)
                return 0;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            code = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            code = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            code = c & 0x07;
        } else {
            return 0;
        }
        if (i + need >= len)
            return 0;
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            code = code << 6 | (s[i + k] & 0x3Fu);
        }
        if ((need == 2 && code < 0x800) || (need == 3 && code < 0x10000) ||
            code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF) ||
            (code >= 0x80 && code <= 0x9F))
            return 0;
        i += need + 1;
    }
    return 1;
}

static inline uint64_t ivch_record_size_(uint64_t length)
{
    return IVCH_RECORD_HEADER + ((length + 7u) & ~(uint64_t)7u);
}

static inline int ivch_rings_ok_(const uint64_t ring[4], uint64_t size)
{
    uint64_t first = ring[0] <= ring[2] ? 0 : 2, second = 2 - first;
    uint64_t end = IVCH_HEADER_SIZE;
    uint64_t pass[2];
    int k;
    pass[0] = first;
    pass[1] = second;
    for (k = 0; k < 2; k++) {
        uint64_t offset = ring[pass[k]], capacity = ring[pass[k] + 1];
        if (offset % IVCH_RING_ALIGN || capacity % IVCH_RING_ALIGN ||
            capacity < IVCH_MIN_RING || offset < end || offset > size ||
            capacity > size - offset)
            return 0;
        end = offset + capacity;
    }
    return 1;
}

/* -- the header ----------------------------------------------------------- */

/*
 * Check the header of the region at base (size bytes mapped). On success
 * fill ring[] with offset and capacity of ring 0 then ring 1, and name
 * (64 bytes, NUL-terminated) when not NULL.
 */
static inline int ivch_check_header(const void *base, uint64_t size,
                                    uint64_t ring[4], char *name)
{
    const unsigned char *h = (const unsigned char *)base;
    uint64_t region_size;
    uint32_t len = 0, i;
    if (size < IVCH_MIN_REGION)
        return IVCH_EINVAL;
    if (IVCH_LOAD(ivch_cword_(h, 0)) != IVCH_MAGIC)
        return IVCH_ENOHEADER;
    if ((h[8] | h[9] << 8) != IVCH_VERSION_MAJOR)
        return IVCH_EVERSION;
    if (ivch_crc32_(h, IVCH_CRC_AT) != ivch_get32_(h + IVCH_CRC_AT))
        return IVCH_ECORRUPT;
    region_size = ivch_get64_(h + 0x10);
    if (ivch_get32_(h + 0x0C) != IVCH_HEADER_SIZE ||
        ivch_get32_(h + 0x18) != IVCH_PEERS || ivch_get32_(h + 0x1C) != 0)
        return IVCH_ECORRUPT;
    if (region_size < IVCH_MIN_REGION || region_size > size)
        return IVCH_ECORRUPT;
    for (i = 0; i < 4; i++)
        ring[i] = ivch_get64_(h + 0x60 + 8 * i);
    if (!ivch_rings_ok_(ring, region_size))
        return IVCH_ECORRUPT;
    while (len < IVCH_NAME_SIZE && h[0x20 + len])
        len++;
    if (!ivch_name_ok_(h + 0x20, len))
        return IVCH_ECORRUPT;
    for (i = len; i < IVCH_NAME_SIZE; i++)
        if (h[0x20 + i])
            return IVCH_ECORRUPT;
    if (name) {
        for (i = 0; i < IVCH_NAME_SIZE; i++)
            name[i] = (char)h[0x20 + i];
    }
    return IVCH_OK;
}

/*
 * Write a fresh channel header named name (NUL-terminated) into the region
 * of size bytes at base: both rings empty, both peers free, rings of equal
 * size. The magic is stored last. Refuses (IVCH_EBUSY) a valid channel with
 * an attached peer unless force.
 */
static inline int ivch_init(void *base, uint64_t size, const char *name,
                            int force)
{
    unsigned char *h = (unsigned char *)base;
    unsigned char header[IVCH_HEADER_BYTES];
    uint32_t len = 0, i;
    uint64_t capacity, ring[4];
    if (size < IVCH_MIN_REGION || ((uintptr_t)base & 7u))
        return IVCH_EINVAL;
    while (len < IVCH_NAME_SIZE && name[len])
        len++;
    if (!ivch_name_ok_((const unsigned char *)name, len))
        return IVCH_EINVAL;
    if (!force && ivch_check_header(base, size, ring, 0) == IVCH_OK) {
        for (i = 0; i < IVCH_PEERS; i++) {
            uint64_t status = IVCH_LOAD(ivch_word_(h, 0x100 + 0x80 * i));
            if ((status & 0xFF) == IVCH_ATTACHED)
                return IVCH_EBUSY;
        }
    }
    capacity = (size - IVCH_HEADER_SIZE) / 2 / IVCH_RING_ALIGN *
               IVCH_RING_ALIGN;
    for (i = 0; i < IVCH_HEADER_BYTES; i++)
        header[i] = 0;
    ivch_put64_(header, IVCH_MAGIC);
    ivch_put32_(header + 8, IVCH_VERSION_MAJOR | IVCH_VERSION_MINOR << 16);
    ivch_put32_(header + 0x0C, IVCH_HEADER_SIZE);
    ivch_put64_(header + 0x10, size);
    ivch_put32_(header + 0x18, IVCH_PEERS);
    for (i = 0; i < len; i++)
        header[0x20 + i] = (unsigned char)name[i];
    ivch_put64_(header + 0x60, IVCH_HEADER_SIZE);
    ivch_put64_(header + 0x68, capacity);
    ivch_put64_(header + 0x70, IVCH_HEADER_SIZE + capacity);
    ivch_put64_(header + 0x78, capacity);
    ivch_put32_(header + IVCH_CRC_AT, ivch_crc32_(header, IVCH_CRC_AT));
    /* Unpublish, write everything but the magic, publish the magic. */
    IVCH_STORE(ivch_word_(h, 0), 0);
    for (i = 8; i < IVCH_HEADER_BYTES; i++)
        h[i] = header[i];
    for (i = IVCH_HEADER_BYTES; i < IVCH_HEADER_SIZE; i++)
        h[i] = 0;
    IVCH_STORE(ivch_word_(h, 0), IVCH_MAGIC);
    return IVCH_OK;
}

/* -- rings ---------------------------------------------------------------- */

static inline int ivch_counters_ok_(uint64_t head, uint64_t tail,
                                    uint64_t capacity)
{
    return !(head & 7u) && !(tail & 7u) && tail <= head &&
           head - tail <= capacity;
}

static inline void ivch_ring_setup_(struct ivch_ring *r, unsigned char *base,
                                    const uint64_t ring[4], unsigned index)
{
    r->data = base + ring[2 * index];
    r->capacity = ring[2 * index + 1];
    r->head = ivch_word_(base, 0x200 + 0x100 * index);
    r->tail = ivch_word_(base, 0x280 + 0x100 * index);
    r->max_message = r->capacity / 2 - IVCH_RECORD_HEADER;
    r->batch_left = 0;
}

/* Load the reader's tail (writer side). */
static inline int ivch_refresh_(struct ivch_channel *ch)
{
    struct ivch_ring *r = &ch->tx;
    uint64_t tail = IVCH_LOAD(r->tail);
    if (tail == r->seen)
        return IVCH_AGAIN;
    if ((tail & 7u) || tail < r->seen || tail > r->shared) {
        ch->error = IVCH_ECORRUPT;
        return IVCH_ECORRUPT;
    }
    r->seen = tail;
    return IVCH_OK;
}

/* Find room for a record of total bytes at r->pos, writing a WRAP record
 * when it would straddle the end. IVCH_OK, IVCH_AGAIN, IVCH_ECORRUPT. */
static inline int ivch_room_(struct ivch_channel *ch, uint64_t total)
{
    struct ivch_ring *r = &ch->tx;
    for (;;) {
        uint64_t offset = r->pos % r->capacity;
        uint64_t contiguous = r->capacity - offset;
        uint64_t free_ = r->capacity - (r->pos - r->seen);
        int rc;
        if (total <= free_ && total <= contiguous)
            return IVCH_OK;
        if (total > contiguous && free_ >= contiguous) {
            ivch_put32_(r->data + offset, 0);
            ivch_put32_(r->data + offset + 4, IVCH_WRAP);
            r->pos += contiguous;
            continue;
        }
        rc = ivch_refresh_(ch);
        if (rc != IVCH_OK)
            return rc;
    }
}

static inline int ivch_put_record_(struct ivch_channel *ch, uint32_t kind,
                                   const void *payload, uint64_t length)
{
    struct ivch_ring *r = &ch->tx;
    uint64_t total = ivch_record_size_(length), offset, i;
    int rc = ivch_room_(ch, total);
    if (rc != IVCH_OK)
        return rc;
    offset = r->pos % r->capacity;
    ivch_put32_(r->data + offset, (uint32_t)length);
    ivch_put32_(r->data + offset + 4, kind);
    if (length)
        memcpy(r->data + offset + IVCH_RECORD_HEADER, payload,
               (size_t)length);
    for (i = IVCH_RECORD_HEADER + length; i < total; i++)
        r->data[offset + i] = 0;
    r->pos += total;
    return IVCH_OK;
}

static inline int ivch_write_marker_(struct ivch_channel *ch)
{
    unsigned char payload[8];
    int rc;
    ivch_put64_(payload, ch->epoch);
    rc = ivch_put_record_(ch, IVCH_EPOCH_RECORD, payload, 8);
    if (rc == IVCH_OK)
        ch->marker_pending = 0;
    return rc;
}

/* -- the channel ---------------------------------------------------------- */

/*
 * Attach as peer (0 or 1) to the channel in the region of size bytes at
 * base (8-byte aligned). name: the expected channel name, or NULL.
 * doorbell: this peer's doorbell word (IVCH_DOORBELL_PRESENT | id << 16 |
 * vector) or 0 when it polls. A slot left attached gives IVCH_EBUSY unless
 * takeover (watch its heartbeat with ivch_slot_heartbeat first). Both rings
 * resume where their counters stand; this epoch's EPOCH record is written.
 */
static inline int ivch_open(struct ivch_channel *ch, void *base,
                            uint64_t size, unsigned peer, const char *name,
                            uint64_t doorbell, int takeover)
{
    unsigned char *b = (unsigned char *)base;
    uint64_t ring[4], status, head, tail;
    uint32_t i;
    int rc;
    ch->error = IVCH_ECLOSED;
    if (peer > 1 || ((uintptr_t)base & 7u))
        return IVCH_EINVAL;
    rc = ivch_check_header(base, size, ring, ch->name);
    if (rc != IVCH_OK)
        return rc;
    if (name) {
        for (i = 0; i < IVCH_NAME_SIZE; i++) {
            if (ch->name[i] != name[i])
                return IVCH_ENAME;
            if (!name[i])
                break;
        }
        if (i == IVCH_NAME_SIZE)
            return IVCH_ENAME;
    }
    ch->base = b;
    ch->size = size;
    ch->peer = peer;
    ch->own = ivch_word_(b, 0x100 + 0x80 * peer);
    ch->other = ivch_word_(b, 0x100 + 0x80 * (1 - peer));
    ivch_ring_setup_(&ch->tx, b, ring, peer);
    ivch_ring_setup_(&ch->rx, b, ring, 1 - peer);
    head = IVCH_LOAD(ch->tx.head);
    tail = IVCH_LOAD(ch->tx.tail);
    if (!ivch_counters_ok_(head, tail, ch->tx.capacity))
        return IVCH_ECORRUPT;
    ch->tx.pos = ch->tx.shared = head;
    ch->tx.seen = tail;
    tail = IVCH_LOAD(ch->rx.tail);
    head = IVCH_LOAD(ch->rx.head);
    if (!ivch_counters_ok_(head, tail, ch->rx.capacity))
        return IVCH_ECORRUPT;
    ch->rx.pos = ch->rx.shared = tail;
    ch->rx.seen = head;
    status = IVCH_LOAD(&ch->own[IVCH_SLOT_STATUS]);
    if ((status & 0xFF) == IVCH_ATTACHED && !takeover)
        return IVCH_EBUSY;
    ch->epoch = (status >> 8) + 1;
    if (ch->epoch >= (uint64_t)1 << 56)
        return IVCH_EINVAL;
    ch->peer_epoch = 0;
    IVCH_STORE(&ch->own[IVCH_SLOT_WAITING], 0);
    IVCH_STORE(&ch->own[IVCH_SLOT_DOORBELL], doorbell);
    IVCH_STORE(&ch->own[IVCH_SLOT_HEARTBEAT],
               IVCH_LOAD(&ch->own[IVCH_SLOT_HEARTBEAT]) + 1);
    IVCH_STORE(&ch->own[IVCH_SLOT_STATUS], ch->epoch << 8 | IVCH_ATTACHED);
    ch->error = IVCH_OK;
    ch->reserving = 0;
    ch->reserved = 0;
    ch->marker_pending = 1;
    rc = ivch_write_marker_(ch);
    if (rc == IVCH_ECORRUPT)
        return rc;
    if (ch->tx.pos != ch->tx.shared) {
        IVCH_STORE(ch->tx.head, ch->tx.pos);
        ch->tx.shared = ch->tx.pos;
    }
    return IVCH_OK;
}

/* What every send checks first: the channel works, no room is
 * reserved, the message fits a record, and this epoch's EPOCH record is
 * written. */
static inline int ivch_send_ready_(struct ivch_channel *ch, uint32_t length)
{
    if (ch->error)
        return ch->error;
    if (ch->reserving)
        return IVCH_EINVAL;
    if (length > ch->tx.max_message)
        return IVCH_ETOOBIG;
    return ch->marker_pending ? ivch_write_marker_(ch) : IVCH_OK;
}

/* Copy one message into the ring, not yet visible (see ivch_publish).
 * IVCH_OK, IVCH_AGAIN (no room now), IVCH_ETOOBIG, IVCH_ECORRUPT. */
static inline int ivch_write(struct ivch_channel *ch, const void *message,
                             uint32_t length)
{
    int rc = ivch_send_ready_(ch, length);
    if (rc != IVCH_OK)
        return rc;
    return ivch_put_record_(ch, IVCH_MESSAGE, message, length);
}

/*
 * Zero-copy sending: room for a message of up to length bytes, whose
 * bytes the caller then writes at *payload, in the ring (a read() into
 * it, say, instead of a copy). ivch_commit with the length used makes it
 * a record; ivch_publish then makes it visible. Until ivch_commit, no
 * other write: ivch_write and ivch_reserve give IVCH_EINVAL. IVCH_OK,
 * IVCH_AGAIN (no room now), IVCH_ETOOBIG, IVCH_ECORRUPT.
 */
static inline int ivch_reserve(struct ivch_channel *ch, uint32_t length,
                               void **payload)
{
    struct ivch_ring *r = &ch->tx;
    int rc = ivch_send_ready_(ch, length);
    if (rc != IVCH_OK)
        return rc;
    rc = ivch_room_(ch, ivch_record_size_(length));
    if (rc != IVCH_OK)
        return rc;
    ch->reserving = 1;
    ch->reserved = length;
    *payload = r->data + r->pos % r->capacity + IVCH_RECORD_HEADER;
    return IVCH_OK;
}

/* Make the message written at ivch_reserve's *payload, length bytes (at
 * most the length reserved), a record; not visible before ivch_publish.
 * IVCH_OK, IVCH_EINVAL (no reservation, or a longer length). */
static inline int ivch_commit(struct ivch_channel *ch, uint32_t length)
{
    struct ivch_ring *r = &ch->tx;
    uint64_t offset = r->pos % r->capacity;
    uint64_t total = ivch_record_size_(length), i;
    if (ch->error)
        return ch->error;
    if (!ch->reserving || length > ch->reserved)
        return IVCH_EINVAL;
    ivch_put32_(r->data + offset, length);
    ivch_put32_(r->data + offset + 4, IVCH_MESSAGE);
    for (i = IVCH_RECORD_HEADER + length; i < total; i++)
        r->data[offset + i] = 0;
    r->pos += total;
    ch->reserving = 0;
    return IVCH_OK;
}

/* Make every record written visible to the reader (the commit point). */
static inline void ivch_publish(struct ivch_channel *ch)
{
    if (!ch->error && ch->tx.pos != ch->tx.shared) {
        IVCH_STORE(ch->tx.head, ch->tx.pos);
        ch->tx.shared = ch->tx.pos;
    }
}

/* ivch_write, then ivch_publish. */
static inline int ivch_send(struct ivch_channel *ch, const void *message,
                            uint32_t length)
{
    int rc = ivch_write(ch, message, length);
    if (rc == IVCH_OK)
        ivch_publish(ch);
    return rc;
}

/* Load the writer's head: 1 when records wait to be read, 0 when none,
 * IVCH_ECORRUPT. */
static inline int ivch_poll(struct ivch_channel *ch)
{
    struct ivch_ring *r = &ch->rx;
    uint64_t head;
    if (ch->error)
        return ch->error;
    head = IVCH_LOAD(r->head);
    if (head != r->seen) {
        if ((head & 7u) || head < r->seen ||
            head - r->shared > r->capacity) {
            ch->error = IVCH_ECORRUPT;
            return IVCH_ECORRUPT;
        }
        r->seen = head;
    }
    return r->seen != r->pos || r->batch_left != 0;
}

/* Check the BATCH record of payload size bytes at offset and start
 * walking it; 0 when it is broken. */
static inline int ivch_batch_start_(struct ivch_ring *r, uint64_t offset,
                                    uint64_t size)
{
    const unsigned char *payload = r->data + offset + IVCH_RECORD_HEADER;
    uint64_t count, start, sum = 0, i;
    if (size < 4)
        return 0;
    count = ivch_get32_(payload);
    start = 4 + 4 * count;
    if (!count || start > size)
        return 0;
    for (i = 0; i < count; i++)
        sum += ivch_get32_(payload + 4 + 4 * i);
    if (sum != size - start)
        return 0;
    r->batch_left = count;
    r->batch_table = offset + IVCH_RECORD_HEADER + 4;
    r->batch_at = offset + IVCH_RECORD_HEADER + start;
    r->batch_end = r->pos + ivch_record_size_(size);
    return 1;
}

/*
 * Take the next message without releasing its room: *message points into
 * the ring (valid until ivch_release), *length is its size. IVCH_OK,
 * IVCH_AGAIN (none published), IVCH_EPOCH (an EPOCH record was passed:
 * ch->peer_epoch is the new writer's epoch; call again), IVCH_ECORRUPT.
 * The writer's head is loaded only when the records seen below the head
 * last loaded are all read: a streaming reader does not pull the
 * writer's counter line across for every message.
 */
static inline int ivch_peek(struct ivch_channel *ch, const void **message,
                            uint32_t *length)
{
    struct ivch_ring *r = &ch->rx;
    for (;;) {
        uint64_t offset, available, size, total;
        uint32_t kind;
        if (ch->error)
            return ch->error;
        if (r->seen == r->pos && !r->batch_left) {
            int rc = ivch_poll(ch);
            if (rc <= 0)
                return rc < 0 ? rc : IVCH_AGAIN;
        }
        if (r->batch_left) {
            *length = ivch_get32_(r->data + r->batch_table);
            *message = r->data + r->batch_at;
            r->batch_table += 4;
            r->batch_at += *length;
            if (!--r->batch_left)
                r->pos = r->batch_end;
            return IVCH_OK;
        }
        offset = r->pos % r->capacity;
        available = r->seen - r->pos;
        size = ivch_get32_(r->data + offset);
        kind = ivch_get32_(r->data + offset + 4);
        if (kind == IVCH_WRAP) {
            if (size || offset == 0 || r->capacity - offset > available)
                break;
            r->pos += r->capacity - offset;
            continue;
        }
        if (kind != IVCH_MESSAGE && kind != IVCH_EPOCH_RECORD &&
            kind != IVCH_BATCH)
            break;
        if (kind != IVCH_EPOCH_RECORD && size > r->max_message)
            break;
        total = ivch_record_size_(size);
        if (total > available || offset + total > r->capacity)
            break;
        if (kind == IVCH_BATCH) {
            if (!ivch_batch_start_(r, offset, size))
                break;
            continue;
        }
        if (kind == IVCH_EPOCH_RECORD) {
            if (size != 8)
                break;
            ch->peer_epoch = ivch_get64_(r->data + offset + 8);
            r->pos += total;
            return IVCH_EPOCH;
        }
        *message = r->data + offset + IVCH_RECORD_HEADER;
        *length = (uint32_t)size;
        r->pos += total;
        return IVCH_OK;
    }
    ch->error = IVCH_ECORRUPT;
    return IVCH_ECORRUPT;
}

/* Give the writer back the room of everything read so far. */
static inline void ivch_release(struct ivch_channel *ch)
{
    if (!ch->error && ch->rx.pos != ch->rx.shared) {
        IVCH_STORE(ch->rx.tail, ch->rx.pos);
        ch->rx.shared = ch->rx.pos;
    }
}

/* Copy the next message into buffer (capacity bytes) and release it.
 * As ivch_peek; IVCH_ETOOBIG leaves the message in place and sets
 * *length to its size. */
static inline int ivch_recv(struct ivch_channel *ch, void *buffer,
                            uint32_t capacity, uint32_t *length)
{
    const void *message;
    struct ivch_ring before = ch->rx;
    int rc = ivch_peek(ch, &message, length);
    if (rc == IVCH_OK) {
        if (*length > capacity) {
            ch->rx = before;
            return IVCH_ETOOBIG;
        }
        memcpy(buffer, message, *length);
    }
    if (rc >= 0)
        ivch_release(ch);
    return rc;
}

/* -- peers and doorbells -------------------------------------------------- */

/* Raise this peer's heartbeat; call it more often than the other side's
 * liveness time (acrn-shm's default: 1 s). */
static inline void ivch_heartbeat(struct ivch_channel *ch)
{
    IVCH_STORE(&ch->own[IVCH_SLOT_HEARTBEAT],
               IVCH_LOAD(&ch->own[IVCH_SLOT_HEARTBEAT]) + 1);
}

/* The other peer's state (IVCH_FREE, ...) and, in *epoch, its epoch. */
static inline unsigned ivch_peer_state(const struct ivch_channel *ch,
                                       uint64_t *epoch)
{
    uint64_t status = IVCH_LOAD(&ch->other[IVCH_SLOT_STATUS]);
    if (epoch)
        *epoch = status >> 8;
    return (unsigned)(status & 0xFF);
}

/* The heartbeat count of peer `peer` in a region (before ivch_open). */
static inline uint64_t ivch_slot_heartbeat(const void *base, unsigned peer)
{
    return IVCH_LOAD(ivch_cword_((const unsigned char *)base,
                                 0x100 + 0x80 * (peer & 1u) + 8));
}

/* The other peer's doorbell word (0: it polls). */
static inline uint64_t ivch_peer_doorbell(const struct ivch_channel *ch)
{
    return IVCH_LOAD(&ch->other[IVCH_SLOT_DOORBELL]);
}

/*
 * After ivch_publish (bit IVCH_WAIT_DATA) or ivch_release (IVCH_WAIT_ROOM):
 * 1 when the other peer blocks on its doorbell for that and has one, so
 * ring it (BAR0 doorbell register: the low 32 bits of ivch_peer_doorbell;
 * on the host, its eventfd).
 */
static inline int ivch_should_ring(struct ivch_channel *ch, unsigned bit)
{
    IVCH_FENCE();
    return (IVCH_LOAD(&ch->other[IVCH_SLOT_WAITING]) & bit) &&
           (ivch_peer_doorbell(ch) & IVCH_DOORBELL_PRESENT);
}

/*
 * Before blocking on the doorbell for bit (IVCH_WAIT_DATA: a message;
 * IVCH_WAIT_ROOM: room to send): announce it, then look again. Returns 1
 * when there is no need to block (it came meanwhile). Call ivch_wait_end
 * after waking, in both cases.
 */
static inline int ivch_wait_begin(struct ivch_channel *ch, unsigned bit)
{
    IVCH_STORE(&ch->own[IVCH_SLOT_WAITING], bit);
    IVCH_FENCE();
    if (bit == IVCH_WAIT_DATA)
        return ivch_poll(ch) != 0;
    return ivch_refresh_(ch) != IVCH_AGAIN;
}

static inline void ivch_wait_end(struct ivch_channel *ch)
{
    IVCH_STORE(&ch->own[IVCH_SLOT_WAITING], 0);
}

/* Leave cleanly: the other side sees this peer detached. */
static inline void ivch_close(struct ivch_channel *ch)
{
    if (ch->error == IVCH_ECLOSED)
        return;
    IVCH_STORE(&ch->own[IVCH_SLOT_WAITING], 0);
    IVCH_STORE(&ch->own[IVCH_SLOT_STATUS], ch->epoch << 8 | IVCH_DETACHED);
    ch->error = IVCH_ECLOSED;
}

/* A short English text for a return code. */
static inline const char *ivch_strerror(int rc)
{
    switch (rc) {
    case IVCH_OK: return "ok";
    case IVCH_AGAIN: return "ring full or empty, try again";
    case IVCH_EPOCH: return "the writer started a new epoch";
    case IVCH_ENOHEADER: return "no channel header (not initialised)";
    case IVCH_EVERSION: return "another major layout version";
    case IVCH_ECORRUPT: return "the region breaks the channel format";
    case IVCH_EINVAL: return "invalid argument";
    case IVCH_ETOOBIG: return "message too long or buffer too small";
    case IVCH_ENAME: return "the region holds another channel";
    case IVCH_EBUSY: return "the peer is attached";
    case IVCH_ECLOSED: return "the channel is closed";
    default: return "unknown return code";
    }
}

#endif /* IVSHMEM_CHANNEL_H */
