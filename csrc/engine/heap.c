/*
 * heap.c: the timer heap, a binary min-heap ordered by (when, seq).
 *
 * Each timer keeps its own slot index, so a cancelled timer leaves the
 * heap at once in O(log n) and no cancelled garbage accumulates.  `seq`
 * comes from a counter at push time, so timers with equal deadlines come
 * out in the order they were added, as in libuv.
 */
#include "iol.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static inline int
timer_less(const iol_timer *a, const iol_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void
heap_place(iol_heap *heap, size_t i, iol_timer *t)
{
    heap->items[i] = t;
    t->index = i;
}

static void
heap_sift_up(iol_heap *heap, size_t i)
{
    iol_timer *t = heap->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_less(t, heap->items[parent])) {
            break;
        }
        heap_place(heap, i, heap->items[parent]);
        i = parent;
    }
    heap_place(heap, i, t);
}

static void
heap_sift_down(iol_heap *heap, size_t i)
{
    iol_timer *t = heap->items[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= heap->len) {
            break;
        }
        if (child + 1 < heap->len &&
            timer_less(heap->items[child + 1], heap->items[child])) {
            child++;
        }
        if (!timer_less(heap->items[child], t)) {
            break;
        }
        heap_place(heap, i, heap->items[child]);
        i = child;
    }
    heap_place(heap, i, t);
}

void
iol_heap_init(iol_heap *heap)
{
    memset(heap, 0, sizeof(*heap));
}

void
iol_heap_free(iol_heap *heap)
{
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
    iol_timer **items = realloc(heap->items, ncap * sizeof(*items));
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
    if (iol_heap_reserve(heap) < 0) {
        return -1;
    }
    timer->seq = heap->next_seq++;
    heap_place(heap, heap->len++, timer);
    heap_sift_up(heap, timer->index);
    return 0;
}

void
iol_heap_remove(iol_heap *heap, iol_timer *timer)
{
    size_t i = timer->index;
    if (i == IOL_NO_INDEX) {
        return;
    }
    heap->len--;
    if (i != heap->len) {
        /* Fill the hole with the last timer, which may belong above or
         * below it. */
        iol_timer *moved = heap->items[heap->len];
        heap_place(heap, i, moved);
        heap_sift_up(heap, i);
        heap_sift_down(heap, moved->index);
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
