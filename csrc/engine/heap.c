/*
 * heap.c: the timer heap, a binary min-heap ordered by (when, seq).
 *
 * Each timer keeps its own slot index (as in libev), so a cancelled timer
 * leaves the heap at once in O(log n) and no cancelled garbage piles up.
 * `seq` comes from a counter at push time, so timers with equal deadlines
 * come out in the order they were added (libuv's start_id).  The heap
 * holds pointers, not timers: timers are owned by the caller, and the array is
 * the one allocation, made ahead of time by iol_heap_reserve().  Each slot
 * carries a copy of its timer's key, so sifting compares within the
 * array instead of chasing a pointer per comparison.
 */
#include "iol.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline int
slot_less(const iol_heap_slot *a, const iol_heap_slot *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* Every write into the array goes through here, so no timer's index can
 * go stale. */
static inline void
heap_place(iol_heap *heap, size_t i, iol_heap_slot slot)
{
    heap->items[i] = slot;
    slot.timer->index = i;
}

/* Move the slot at i towards the root; return its final position. */
static size_t
heap_sift_up(iol_heap *heap, size_t i)
{
    iol_heap_slot slot = heap->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!slot_less(&slot, &heap->items[parent])) {
            break;
        }
        heap_place(heap, i, heap->items[parent]);
        i = parent;
    }
    heap_place(heap, i, slot);
    return i;
}

static void
heap_sift_down(iol_heap *heap, size_t i)
{
    iol_heap_slot slot = heap->items[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= heap->len) {
            break;
        }
        if (child + 1 < heap->len &&
            slot_less(&heap->items[child + 1], &heap->items[child])) {
            child++;
        }
        if (!slot_less(&heap->items[child], &slot)) {
            break;
        }
        heap_place(heap, i, heap->items[child]);
        i = child;
    }
    heap_place(heap, i, slot);
}

void
iol_heap_init(iol_heap *heap)
{
    memset(heap, 0, sizeof(*heap));
}

void
iol_heap_free(iol_heap *heap)
{
    /* The timers are not touched: their owners may have freed them
     * already.  A later remove() of one is still safe, because remove()
     * checks that the slot it names holds that very timer. */
    free(heap->items);
    iol_heap_init(heap);
}

int
iol_heap_reserve(iol_heap *heap)
{
    if (heap->len < heap->cap) {
        return 0;
    }
    size_t ncap = heap->cap ? heap->cap * 2 : 16;
    if (ncap < heap->cap || ncap > SIZE_MAX / sizeof(*heap->items)) {
        errno = ENOMEM;
        return -1;
    }
    iol_heap_slot *items = realloc(heap->items, ncap * sizeof(*items));
    if (items == NULL) {
        errno = ENOMEM;
        return -1;
    }
    heap->items = items;
    heap->cap = ncap;
    return 0;
}

int
iol_heap_push(iol_heap *heap, iol_timer *timer)
{
    /* A no-op after a successful reserve, which is what lets the binding
     * reserve before it commits to anything and then push infallibly. */
    if (iol_heap_reserve(heap) < 0) {
        return -1;
    }
    timer->seq = heap->next_seq++;
    iol_heap_slot slot = {timer->when, timer->seq, timer};
    heap_place(heap, heap->len++, slot);
    (void)heap_sift_up(heap, heap->len - 1);
    return 0;
}

void
iol_heap_remove(iol_heap *heap, iol_timer *timer)
{
    size_t i = timer->index;
    /* Not in this heap (never pushed, already removed, or a stale index):
     * nothing to do, and nothing of another timer's to overwrite. */
    if (i >= heap->len || heap->items[i].timer != timer) {
        return;
    }
    heap->len--;
    if (i != heap->len) {
        /* Fill the hole with the last timer.  It may belong above the hole
         * (it came from another subtree) or below it, so try both ways;
         * at most one of them moves it. */
        heap_place(heap, i, heap->items[heap->len]);
        if (heap_sift_up(heap, i) == i) {
            heap_sift_down(heap, i);
        }
    }
    timer->index = IOL_NO_INDEX;
}

iol_timer *
iol_heap_pop(iol_heap *heap)
{
    iol_timer *top = iol_heap_peek(heap);
    if (top != NULL) {
        iol_heap_remove(heap, top);
    }
    return top;
}
