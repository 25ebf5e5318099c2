/*
 * iostream_buf.c: the native IOStream's read buffer.
 *
 * One contiguous, growable block with a read position: recv() goes
 * straight into its free tail, delimiters are found with memchr() and
 * memcmp() (a search resumes where the last miss stopped), a consume
 * copies the bytes out and moves the position, and the block is
 * compacted only when its tail is too short.  The block is a bytes
 * object of our own, so a consume of all of it can hand it over as the
 * result without a copy.
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "../engine/sock.h"

/* An empty read buffer bigger than this is freed rather than kept. */
#define IOL_KEEP_RBUF (256 * 1024)
/* A take of the whole buffer from this size on hands the block over
 * when it fills at least a quarter of it (big blocks grow fourfold):
 * the next read gets a fresh block, which costs less than copying this
 * much out.  HTTP bodies are read in 64 KiB pieces, so those qualify. */
#define IOL_HAND_OVER (32 * 1024)
/* A reservation this large for an empty buffer (a read_bytes() that
 * knows its size) gets a block of exactly that size. */
#define IOL_EXACT_BLOCK (1024 * 1024)
/* Blocks this large may be backed by huge pages. */
#define IOL_HUGE_BLOCK (4 * 1024 * 1024)
#define IOL_HUGE_PAGE (2 * 1024 * 1024)
/* A big block with this much room left takes a read before it grows. */
#define IOL_MIN_TAIL (64 * 1024)

int
iol_ios_check_exports(IOStreamCoreObject *s)
{
    if (s->exports > 0) {
        PyErr_SetString(PyExc_BufferError,
                        "the read buffer is exported (a memoryview of the "
                        "stream is alive)");
        return -1;
    }
    return 0;
}

/* Ask for huge pages over the 2 MiB-aligned interior of a large block
 * before its pages are touched: a 32 MiB message then costs 16 page
 * faults instead of 8,192 (the faults, not the copies, were the largest
 * cost of a fresh block per message).  Advice only: errors are ignored,
 * and the kernel's transparent huge page setting decides. */
static void
advise_huge(char *p, Py_ssize_t len)
{
#ifdef MADV_HUGEPAGE
    if (len < IOL_HUGE_BLOCK) {
        return;
    }
    uintptr_t lo = ((uintptr_t)p + IOL_HUGE_PAGE - 1) &
                   ~(uintptr_t)(IOL_HUGE_PAGE - 1);
    uintptr_t hi = ((uintptr_t)p + (uintptr_t)len) &
                   ~(uintptr_t)(IOL_HUGE_PAGE - 1);
    if (hi > lo) {
        int err = errno;
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
        errno = err;
    }
#else
    (void)p;
    (void)len;
#endif
}

/* Make room for `want` more bytes after the unread ones. */
int
iol_ios_reserve(IOStreamCoreObject *s, Py_ssize_t want)
{
    Py_ssize_t tail = s->rcap - s->rpos - s->rlen;
    if (tail >= want) {
        return 0;
    }
    if (iol_ios_check_exports(s) < 0) {
        return -1;
    }
    if (s->rpos > 0 && s->rcap - s->rlen >= want) {
        memmove(s->rbuf, s->rbuf + s->rpos, (size_t)s->rlen);
        s->rpos = 0;
        return 0;
    }
    if (want > PY_SSIZE_T_MAX / 2 - s->rlen) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t need = s->rlen + want;
    Py_ssize_t ncap = s->rcap ? s->rcap : 4096;
    if (s->rblock == NULL && want >= IOL_EXACT_BLOCK) {
        ncap = want;
    }
    while (ncap < need) {
        /* Big blocks grow fourfold: each growth copies what is unread,
         * and untouched pages of the new block cost nothing. */
        Py_ssize_t f = ncap >= IOL_HUGE_BLOCK ? 4 : 2;
        ncap = ncap > PY_SSIZE_T_MAX / f ? need : ncap * f;
    }
    if (s->rpos > 0) {
        memmove(s->rbuf, s->rbuf + s->rpos, (size_t)s->rlen);
        s->rpos = 0;
    }
    /* The block is a bytes object of our own (refcount 1, never shared
     * while it is the buffer), so that a take of all of it can hand it
     * over as the result without a copy; see iol_ios_take(). */
    if (s->rblock == NULL) {
        s->rblock = PyBytes_FromStringAndSize(NULL, ncap);
    }
    else if (ncap >= IOL_HUGE_BLOCK) {
        /* A new block, advised before it is touched, and the unread
         * bytes copied into it: realloc() would copy them into pages
         * faulted in one by one before any advice could be given. */
        PyObject *grown = PyBytes_FromStringAndSize(NULL, ncap);
        if (grown == NULL && ncap > need) {
            /* Where address space is limited, just enough may fit. */
            PyErr_Clear();
            ncap = need;
            grown = PyBytes_FromStringAndSize(NULL, ncap);
        }
        if (grown == NULL) {
            return -1;  /* the old block and its bytes stay */
        }
        advise_huge(PyBytes_AS_STRING(grown), ncap);
        memcpy(PyBytes_AS_STRING(grown), s->rbuf, (size_t)s->rlen);
        Py_SETREF(s->rblock, grown);
    }
    else if (_PyBytes_Resize(&s->rblock, ncap) < 0) {
        s->rblock = NULL;
    }
    if (s->rblock == NULL) {
        /* _PyBytes_Resize() freed the block: what it held is gone. */
        s->rbuf = NULL;
        s->rcap = s->rlen = s->rpos = 0;
        return -1;
    }
    s->rbuf = PyBytes_AS_STRING(s->rblock);
    s->rcap = ncap;
    advise_huge(s->rbuf, ncap);
    return 0;
}

void
iol_ios_rbuf_free(IOStreamCoreObject *s)
{
    Py_CLEAR(s->rblock);
    s->rbuf = NULL;
    s->rcap = 0;
}

/* Forget n unread bytes (n <= rlen). */
void
iol_ios_drop(IOStreamCoreObject *s, Py_ssize_t n)
{
    s->fscan = 0;
    s->hscan = 0;
    s->rpos += n;
    s->rlen -= n;
    if (s->rlen == 0) {
        s->rpos = 0;
        if (s->rcap > IOL_KEEP_RBUF) {
            iol_ios_rbuf_free(s);
        }
    }
}

void
iol_ios_user_end(IOStreamCoreObject *s)
{
    s->user = 0;
    s->ufill = 0;
    Py_CLEAR(s->uobj);
}

/* ------------------------------------------------------------------ */
/* The read side */

/* One recv() of at most `size` bytes, into the caller's buffer during
 * read_into() and into the read buffer otherwise.  The count, 0 at end
 * of file, -1 with errno, or IOL_IOS_GOT_EXC with an exception set. */
ssize_t
iol_ios_recv(IOStreamCoreObject *s, Py_ssize_t size)
{
    ssize_t n;
    if (s->user) {
        Py_buffer view;
        if (PyObject_GetBuffer(s->uobj, &view, PyBUF_WRITABLE) < 0) {
            return IOL_IOS_GOT_EXC;
        }
        Py_ssize_t room = view.len - s->ufill;
        if (room <= 0) {
            PyBuffer_Release(&view);
            return 0;
        }
        n = iol_sock_recv(s->fd, (char *)view.buf + s->ufill,
                          (size_t)room);
        int err = errno;
        PyBuffer_Release(&view);
        errno = err;
        if (n > 0) {
            s->ufill += n;
        }
        return n;
    }
    /* A big block's last stretch is filled before the block grows: a
     * message that ends near a block's end then needs no larger one. */
    Py_ssize_t tail = s->rcap - s->rpos - s->rlen;
    if (s->rcap >= IOL_HUGE_BLOCK && tail >= IOL_MIN_TAIL && tail < size) {
        size = tail;
    }
    if (iol_ios_reserve(s, size) < 0) {
        return IOL_IOS_GOT_EXC;
    }
    n = iol_sock_recv(s->fd, s->rbuf + s->rpos + s->rlen, (size_t)size);
    if (n > 0) {
        s->rlen += n;
    }
    return n;
}

/* memmem(), faster for the usual case of a delimiter whose first byte
 * is rare in the data ("\r\n\r\n" in a message): memchr() skips to
 * each candidate and memcmp() checks it, which moves at memory speed
 * where glibc's memmem() for short needles manages a fraction of that.
 * Once the first byte turns out to be common (more than one false
 * candidate per 256 bytes scanned, after the first 16), memmem() takes
 * the rest, so no input makes the search worse than memmem()'s. */
static const char *
search(const char *hay, Py_ssize_t hlen, const char *d, Py_ssize_t dlen)
{
    const char *p = hay, *end = hay + hlen;
    Py_ssize_t misses = 0;
    while (end - p >= dlen) {
        const char *c = memchr(p, d[0], (size_t)(end - p - dlen + 1));
        if (c == NULL) {
            return NULL;
        }
        if (memcmp(c + 1, d + 1, (size_t)(dlen - 1)) == 0) {
            return c;
        }
        p = c + 1;
        if (++misses > 16 && misses * 256 > p - hay) {
            return memmem(p, (size_t)(end - p), d, (size_t)dlen);
        }
    }
    return NULL;
}

/* Where the delimiter begins in the unread bytes, or -1.  A search
 * resumes where the last miss for the same delimiter left off, so a
 * message that arrives in many pieces is scanned once, not once per
 * piece (Tornado rescans from the start on every read event). */
static Py_ssize_t
find_in(IOStreamCoreObject *s, PyObject *delim, const char *d,
        Py_ssize_t dlen)
{
    if (s->user) {
        /* Delimited reads never run during read_into(). */
        return -1;
    }
    Py_ssize_t start = 0;
    if (s->fdelim == delim) {
        start = s->fscan;
    }
    else {
        Py_XSETREF(s->fdelim, Py_NewRef(delim));
    }
    if (dlen == 0) {
        return 0;
    }
    Py_ssize_t pos = -1;
    if (start < s->rlen && dlen <= s->rlen - start) {
        const char *base = s->rbuf + s->rpos;
        const char *hit = search(base + start, s->rlen - start, d, dlen);
        pos = hit ? (Py_ssize_t)(hit - base) : -1;
    }
    if (pos < 0) {
        Py_ssize_t next = s->rlen - dlen + 1;
        s->fscan = next > start ? next : start;
    }
    return pos;
}

/* The delimiter's position (see find_in()), -1 if it is not there, or
 * IOL_IOS_GOT_EXC for a delimiter that is no buffer. */
Py_ssize_t
iol_ios_find_delim(IOStreamCoreObject *s, PyObject *delim)
{
    if (PyBytes_CheckExact(delim)) {
        return find_in(s, delim, PyBytes_AS_STRING(delim),
                       PyBytes_GET_SIZE(delim));
    }
    Py_buffer view;
    if (PyObject_GetBuffer(delim, &view, PyBUF_SIMPLE) < 0) {
        return IOL_IOS_GOT_EXC;
    }
    /* A mutable delimiter may change between searches: no resume. */
    s->fscan = 0;
    Py_CLEAR(s->fdelim);
    Py_ssize_t pos = find_in(s, Py_None, view.buf, view.len);
    Py_CLEAR(s->fdelim);
    s->fscan = 0;
    PyBuffer_Release(&view);
    return pos;
}

/* Where a match of Tornado's header regex, rb"\r?\n\r?\n", ends in the
 * unread bytes, or -1: the leftmost match starts at or just before the
 * first '\n' that a '\n' or "\r\n" follows, and its end is fixed by that
 * '\n'.  A miss resumes two bytes before the end, where a '\n' may still
 * be completed. */
Py_ssize_t
iol_ios_find_blank_line(IOStreamCoreObject *s)
{
    if (s->user) {
        return -1;
    }
    const char *base = s->rbuf + s->rpos;
    Py_ssize_t i = s->hscan;
    while (i < s->rlen) {
        const char *nl = memchr(base + i, '\n', (size_t)(s->rlen - i));
        if (nl == NULL) {
            break;
        }
        i = nl - base;
        if (i + 1 < s->rlen && base[i + 1] == '\n') {
            return i + 2;
        }
        if (i + 2 < s->rlen && base[i + 1] == '\r' && base[i + 2] == '\n') {
            return i + 3;
        }
        if (i + 2 >= s->rlen) {
            break;
        }
        i++;
    }
    Py_ssize_t next = s->rlen - 2;
    if (next > s->hscan) {
        s->hscan = next;
    }
    return -1;
}

/* The first n unread bytes as bytes, consumed. */
PyObject *
iol_ios_take(IOStreamCoreObject *s, Py_ssize_t n)
{
    if (n < 0 || n > s->rlen) {
        PyErr_Format(PyExc_ValueError, "cannot take %zd of %zd buffered "
                     "bytes", n, s->rlen);
        return NULL;
    }
    if (n == 0) {
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    if (iol_ios_check_exports(s) < 0) {
        return NULL;
    }
    if (s->rpos == 0 && n == s->rlen && n >= IOL_HAND_OVER &&
        n >= s->rcap / 4) {
        /* A large message that is the whole buffer: the block itself,
         * cut to size (in place), becomes the result. */
        PyObject *b = s->rblock;
        s->rblock = NULL;
        iol_ios_rbuf_free(s);
        iol_ios_drop(s, n);
        if (_PyBytes_Resize(&b, n) < 0) {
            return NULL;
        }
        return b;
    }
    PyObject *b = PyBytes_FromStringAndSize(s->rbuf + s->rpos, n);
    if (b != NULL) {
        iol_ios_drop(s, n);
    }
    return b;
}

