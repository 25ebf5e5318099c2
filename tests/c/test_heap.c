/*
 * test_heap.c: the timer heap against a reference model.
 *
 * The model is a sorted array ordered by (when, order), where `order` is
 * the model's own insertion counter: it does not trust the heap's `seq`,
 * so it checks FIFO for equal deadlines independently.  100,000 random
 * pushes, removals of live timers, pops and peeks (fixed seed; deadlines
 * mostly from a small range so ties are common, with extremes mixed in)
 * must agree with it, and every timer's stored index must point back at
 * it.
 */
#include "ctest.h"
#include "iol.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define POOL 2048
#define STEPS 100000

static iol_timer timers[POOL];
static uint64_t order[POOL]; /* the model's insertion counter, per timer */
static int live[POOL];
static iol_timer *model[POOL]; /* live timers, sorted by (when, order) */
static size_t model_len;
static uint64_t next_order;

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t
rng(void)
{
    /* xorshift64*: the same sequence on every libc, unlike rand(). */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

static int
model_less(const iol_timer *a, const iol_timer *b)
{
    return a->when < b->when ||
           (a->when == b->when && order[a - timers] < order[b - timers]);
}

static void
model_insert(iol_timer *t)
{
    order[t - timers] = next_order++;
    size_t lo = 0, hi = model_len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (model_less(model[mid], t)) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    memmove(&model[lo + 1], &model[lo], (model_len - lo) * sizeof(*model));
    model[lo] = t;
    model_len++;
}

static void
model_remove(iol_timer *t)
{
    size_t i = 0;
    while (i < model_len && model[i] != t) {
        i++;
    }
    memmove(&model[i], &model[i + 1], (model_len - i - 1) * sizeof(*model));
    model_len--;
}

/* The heap property, each slot's index, and each timer's index. */
static int
heap_consistent(const iol_heap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        const iol_timer *c = h->items[i].timer;
        if (c->index != i) {
            return 0;
        }
        if (i > 0) {
            const iol_timer *p = h->items[(i - 1) / 2].timer;
            if (h->items[i].when != c->when || h->items[i].seq != c->seq) {
                return 0;
            }
            if (c->when < p->when || (c->when == p->when && c->seq < p->seq)) {
                return 0;
            }
        }
    }
    for (int i = 0; i < POOL; i++) {
        if (live[i] ? timers[i].index >= h->len ||
                          h->items[timers[i].index].timer != &timers[i]
                    : timers[i].index != IOL_NO_INDEX) {
            return 0;
        }
    }
    return 1;
}

static int64_t
random_when(void)
{
    switch (rng() % 32) {
    case 0:
        return INT64_MAX;
    case 1:
        return INT64_MIN;
    case 2:
        return (int64_t)(rng() >> 1) - (INT64_MAX / 2);
    default:
        return (int64_t)(rng() % 64);
    }
}

static void
test_basics(void)
{
    iol_heap h;
    iol_heap_init(&h);
    CHECK(iol_heap_peek(&h) == NULL);
    CHECK(iol_heap_pop(&h) == NULL);

    /* reserve leaves room, and a second reserve adds none. */
    CHECK(iol_heap_reserve(&h) == 0);
    CHECK(h.cap > h.len);
    size_t cap = h.cap;
    CHECK(iol_heap_reserve(&h) == 0);
    CHECK(h.cap == cap);

    /* Equal deadlines: insertion order, also after removals. */
    iol_timer t[100];
    int ok = 1;
    for (int i = 0; i < 100; i++) {
        t[i].when = 7;
        t[i].index = IOL_NO_INDEX;
        ok &= iol_heap_reserve(&h) == 0 && h.len < h.cap;
        ok &= iol_heap_push(&h, &t[i]) == 0;
        ok &= i == 0 || t[i].seq > t[i - 1].seq;
    }
    CHECK(ok);
    for (int i = 0; i < 100; i += 3) {
        iol_heap_remove(&h, &t[i]);
        CHECK(t[i].index == IOL_NO_INDEX);
    }
    /* Removing again, or removing a timer never pushed: no-ops. */
    iol_heap_remove(&h, &t[0]);
    iol_timer stray = {.when = 0, .seq = 0, .index = IOL_NO_INDEX};
    iol_heap_remove(&h, &stray);
    CHECK(h.len == 66);
    /* A stale index naming another timer's slot must not evict it. */
    stray.index = 0;
    iol_heap_remove(&h, &stray);
    CHECK(h.len == 66 && h.items[0].timer == &t[1]);

    /* A popped timer pushed again goes behind its equals. */
    iol_timer *first = iol_heap_pop(&h);
    CHECK(first == &t[1]);
    CHECK(first->index == IOL_NO_INDEX);
    CHECK(iol_heap_push(&h, first) == 0);
    ok = 1;
    for (int i = 2; i < 100; i++) {
        if (i % 3 != 0) {
            ok &= iol_heap_pop(&h) == &t[i];
        }
    }
    CHECK(ok);
    CHECK(iol_heap_pop(&h) == &t[1]);
    CHECK(h.len == 0 && iol_heap_pop(&h) == NULL);

    /* An earlier deadline wins whatever the order of pushes. */
    iol_timer late = {.when = 100}, early = {.when = -100};
    CHECK(iol_heap_push(&h, &late) == 0);
    CHECK(iol_heap_push(&h, &early) == 0);
    CHECK(iol_heap_peek(&h) == &early);

    /* free leaves an empty heap that can be used again. */
    iol_heap_free(&h);
    CHECK(h.len == 0 && h.cap == 0 && h.items == NULL);
    CHECK(iol_heap_push(&h, &late) == 0);
    CHECK(iol_heap_pop(&h) == &late);
    iol_heap_free(&h);
}

static void
test_random(void)
{
    iol_heap h;
    iol_heap_init(&h);
    for (int i = 0; i < POOL; i++) {
        timers[i].index = IOL_NO_INDEX;
    }
    long bad_order = 0, bad_seq = 0, bad_index = 0, bad_len = 0;
    long pushes = 0, removes = 0, pops = 0;
    size_t max_len = 0;
    uint64_t last_seq = 0;
    for (int step = 0; step < STEPS; step++) {
        /* Alternate growing and shrinking phases, so the heap is tested
         * both large and nearly empty. */
        int growing = (step / 5000) % 2 == 0;
        unsigned op = (unsigned)(rng() % 100);
        int i = (int)(rng() % POOL);
        if (op < (growing ? 70u : 40u)) {
            if (!live[i]) {
                timers[i].when = random_when();
                int r;
                if (rng() % 2) {
                    r = iol_heap_reserve(&h);
                    bad_len += r != 0 || h.len >= h.cap;
                    r = iol_heap_push(&h, &timers[i]);
                }
                else {
                    r = iol_heap_push(&h, &timers[i]);
                }
                bad_index += r != 0;
                bad_seq += pushes > 0 && timers[i].seq != last_seq + 1;
                last_seq = timers[i].seq;
                model_insert(&timers[i]);
                live[i] = 1;
                pushes++;
            }
            else {
                iol_heap_remove(&h, &timers[i]);
                bad_index += timers[i].index != IOL_NO_INDEX;
                model_remove(&timers[i]);
                live[i] = 0;
                removes++;
            }
        }
        else if (op < 90) {
            iol_timer *got = iol_heap_pop(&h);
            if (model_len == 0) {
                bad_order += got != NULL;
            }
            else {
                bad_order += got != model[0];
                bad_index += got != NULL && got->index != IOL_NO_INDEX;
                live[model[0] - timers] = 0;
                model_remove(model[0]);
                pops++;
            }
        }
        else {
            bad_order += iol_heap_peek(&h) != (model_len ? model[0] : NULL);
        }
        bad_len += h.len != model_len;
        if (h.len > max_len) {
            max_len = h.len;
        }
        if (step % 101 == 0) {
            bad_index += !heap_consistent(&h);
        }
    }
    CHECK(bad_order == 0);
    CHECK(bad_seq == 0);
    CHECK(bad_index == 0);
    CHECK(bad_len == 0);
    CHECK(heap_consistent(&h));
    /* The run really exercised all paths on a heap of some size. */
    CHECK(pushes > 20000 && removes > 5000 && pops > 5000);
    CHECK(max_len > 500);

    /* Drain: the model's order exactly, so (when, seq) ascending. */
    int drained_ok = 1;
    for (size_t k = 0; k < model_len; k++) {
        drained_ok &= iol_heap_pop(&h) == model[k];
    }
    CHECK(drained_ok);
    CHECK(iol_heap_pop(&h) == NULL);
    iol_heap_free(&h);
}

int
main(void)
{
    test_basics();
    test_random();
    return ctest_done("test_heap");
}
