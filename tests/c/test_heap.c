/* test_heap.c: the timer heap against a reference model.
 *
 * Random pushes (deadlines from a small range, so ties are common),
 * removals of random live timers, and pops; every pop must return the
 * live timer with the smallest (when, seq), and every timer's stored
 * index must point back at it. */
#include "ctest.h"
#include "iol.h"

#include <stdlib.h>

#define N 4096

static iol_timer timers[N];
static int live[N]; /* 1 if timers[i] is in the heap */

static int
model_min(void)
{
    int best = -1;
    for (int i = 0; i < N; i++) {
        if (!live[i]) {
            continue;
        }
        if (best < 0 || timers[i].when < timers[best].when ||
            (timers[i].when == timers[best].when &&
             timers[i].seq < timers[best].seq)) {
            best = i;
        }
    }
    return best;
}

static int
indexes_consistent(const iol_heap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        if (h->items[i]->index != i) {
            return 0;
        }
        if (i > 0) {
            const iol_timer *p = h->items[(i - 1) / 2], *c = h->items[i];
            if (c->when < p->when || (c->when == p->when && c->seq < p->seq)) {
                return 0;
            }
        }
    }
    return 1;
}

int
main(void)
{
    iol_heap heap;
    iol_heap_init(&heap);
    CHECK(iol_heap_peek(&heap) == NULL);
    CHECK(iol_heap_pop(&heap) == NULL);

    /* Equal deadlines come out in insertion order. */
    for (int i = 0; i < 10; i++) {
        timers[i].when = 5;
        CHECK(iol_heap_push(&heap, &timers[i]) == 0);
    }
    int fifo = 1;
    for (int i = 0; i < 10; i++) {
        fifo &= iol_heap_pop(&heap) == &timers[i];
    }
    CHECK(fifo);
    CHECK(heap.len == 0);

    /* Removing a timer not in the heap is a no-op. */
    timers[0].index = IOL_NO_INDEX;
    iol_heap_remove(&heap, &timers[0]);
    CHECK(heap.len == 0);

    srand(12345);
    int bad_order = 0, bad_index = 0;
    size_t nlive = 0;
    for (int step = 0; step < 100000; step++) {
        int op = rand() % 10;
        int i = rand() % N;
        if (op < 5) {
            if (!live[i]) {
                timers[i].when = rand() % 64;
                if (iol_heap_reserve(&heap) != 0 ||
                    iol_heap_push(&heap, &timers[i]) != 0) {
                    bad_index++;
                }
                live[i] = 1;
                nlive++;
            }
        }
        else if (op < 8) {
            if (live[i]) {
                iol_heap_remove(&heap, &timers[i]);
                bad_index += timers[i].index != IOL_NO_INDEX;
                live[i] = 0;
                nlive--;
            }
        }
        else {
            int want = model_min();
            iol_timer *got = iol_heap_pop(&heap);
            if (want < 0) {
                bad_order += got != NULL;
            }
            else {
                bad_order += got != &timers[want];
                live[want] = 0;
                nlive--;
            }
        }
        if (step % 997 == 0) {
            bad_index += !indexes_consistent(&heap);
        }
        bad_index += heap.len != nlive;
    }
    CHECK(bad_order == 0);
    CHECK(bad_index == 0);
    CHECK(indexes_consistent(&heap));

    /* Drain: strictly ordered by (when, seq). */
    iol_timer *prev = NULL, *t;
    int sorted = 1;
    while ((t = iol_heap_pop(&heap)) != NULL) {
        if (prev != NULL && (t->when < prev->when ||
                             (t->when == prev->when && t->seq < prev->seq))) {
            sorted = 0;
        }
        prev = t;
    }
    CHECK(sorted);
    iol_heap_free(&heap);
    return ctest_done("test_heap");
}
