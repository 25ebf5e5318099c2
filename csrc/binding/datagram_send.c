/*
 * datagram_send.c: the native datagram transport's output side.
 *
 * sendto(data, addr=None) follows asyncio's _SelectorDatagramTransport
 * to the letter: the same checks in the same order, the same errors
 * (an OSError from the kernel goes to protocol.error_received() and the
 * transport stays open; anything else is the transport's fatal error),
 * the same queue when the kernel says EAGAIN, with the queue's size
 * (plus asyncio 3.12+'s 8 bytes per datagram) driving pause_writing() /
 * resume_writing() through _FlowControlMixin's own methods.
 *
 * A connected socket sends with send().  Otherwise the address is parsed
 * here when it is in its plain numeric form ((host, port) with a numeric
 * host, a Unix path); any other form (host names, '<broadcast>', a
 * scoped IPv6 literal, odd types) goes to the socket object's own
 * sendto(), which resolves it and raises what asyncio users see.  The
 * last address parsed is kept, so replying to the same peer object
 * costs no parse.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "../engine/sock.h"

/* asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES */
#define IOL_CONNLOST_LOG 5

int
iol_dg_want(DatagramObject *dg, int want)
{
    return iol_trl_want((PyObject *)dg, &dg->life, dg->fd, want);
}

/* A protocol callback run from the tick raised: report it as asyncio's
 * loop reports a callback that raised (self._report_protocol_error).
 * -1 (the exception set again) for SystemExit / KeyboardInterrupt. */
int
iol_dg_report(DatagramObject *dg, PyObject *exc, const char *message)
{
    if (exc == NULL) {
        return 0;
    }
    return iol_trl_report((PyObject *)dg, "_report_protocol_error", exc,
                          message);
}

void
iol_dg_queue_clear(DatagramObject *dg)
{
    Py_ssize_t n = dg->wlen, head = dg->whead;
    dg->whead = 0;
    dg->wlen = 0;
    dg->wsize = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(dg->wq[head + i].data);
        Py_DECREF(dg->wq[head + i].addr);
    }
}

/* The plain numeric forms of an address for this socket's family, into
 * sa; 0 if addr has another form (the socket object's sendto() takes
 * it then), -1 on an error. */
static int
parse_addr(DatagramObject *dg, PyObject *addr, struct sockaddr_storage *sa,
           socklen_t *salen)
{
    if (dg->family == AF_UNIX) {
        PyObject *b = PyUnicode_CheckExact(addr)
                          ? PyUnicode_EncodeFSDefault(addr)
                          : PyBytes_CheckExact(addr) ? Py_NewRef(addr)
                                                     : NULL;
        if (b == NULL) {
            PyErr_Clear();
            return 0;
        }
        /* As the socket module: a path gets its NUL (and so must be
         * shorter than sun_path); an abstract name is taken as is. */
        const char *p = PyBytes_AS_STRING(b);
        size_t len = (size_t)PyBytes_GET_SIZE(b);
        int abstract = len == 0 || p[0] == '\0';
        struct sockaddr_un *un = (struct sockaddr_un *)sa;
        int ok = (abstract || len < sizeof(un->sun_path)) &&
                 iol_sock_addr_unix(p, abstract ? len : len + 1, sa,
                                    salen) == 0;
        Py_DECREF(b);
        return ok;
    }
    Py_ssize_t n = PyTuple_CheckExact(addr) ? PyTuple_GET_SIZE(addr) : 0;
    if (n < 2 || n > (dg->family == AF_INET6 ? 4 : 2)) {
        return 0;
    }
    PyObject *h = PyTuple_GET_ITEM(addr, 0);
    if (!PyUnicode_CheckExact(h) || !PyUnicode_IS_ASCII(h)) {
        return 0;
    }
    unsigned long v[3] = {0, 0, 0};
    static const unsigned long max[3] = {65535, 0xfffff, 0xffffffffUL};
    for (Py_ssize_t i = 1; i < n; i++) {
        PyObject *o = PyTuple_GET_ITEM(addr, i);
        if (!PyLong_CheckExact(o)) {
            return 0;
        }
        v[i - 1] = PyLong_AsUnsignedLong(o);
        if (PyErr_Occurred() || v[i - 1] > max[i - 1]) {
            PyErr_Clear();
            return 0;
        }
    }
    const char *host = PyUnicode_AsUTF8(h);
    if (host == NULL || strlen(host) != (size_t)PyUnicode_GET_LENGTH(h)) {
        PyErr_Clear();
        return 0;
    }
    return iol_sock_addr_inet(dg->family, host, (unsigned)v[0],
                              (uint32_t)v[1], (uint32_t)v[2], sa,
                              salen) == 0;
}

/* Send one datagram: 1 sent, 0 the kernel would block, -1 an exception
 * set (an OSError from the kernel, or what the socket's own sendto()
 * raised). */
static int
send_one(DatagramObject *dg, PyObject *data, const void *buf,
         Py_ssize_t len, PyObject *addr)
{
    const struct sockaddr *sa = NULL;
    socklen_t salen = 0;
    if (!dg->connected) {
        if (addr != dg->tx_addr) {
            /* Parsed aside: a failed parse must not spoil the cached
             * address of tx_addr. */
            struct sockaddr_storage ss;
            socklen_t sslen = 0;
            int ok = addr == Py_None ? 0
                                     : parse_addr(dg, addr, &ss, &sslen);
            if (ok < 0) {
                return -1;
            }
            if (!ok) {
                PyObject *res = PyObject_CallMethod(dg->life.sock, "sendto",
                                                    "OO", data, addr);
                if (res != NULL) {
                    Py_DECREF(res);
                    return 1;
                }
                if (PyErr_ExceptionMatches(PyExc_BlockingIOError) ||
                    PyErr_ExceptionMatches(PyExc_InterruptedError)) {
                    PyErr_Clear();
                    return 0;
                }
                return -1;
            }
            Py_XSETREF(dg->tx_addr, Py_NewRef(addr));
            memcpy(&dg->tx_sa, &ss, sizeof(ss));
            dg->tx_salen = sslen;
        }
        sa = (const struct sockaddr *)&dg->tx_sa;
        salen = dg->tx_salen;
    }
    if (iol_sock_sendto(dg->fd, buf, (size_t)len, sa, salen) >= 0) {
        return 1;
    }
    if (iol_sock_would_block(errno)) {
        return 0;
    }
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* After a failed send: an OSError goes to protocol.error_received(exc);
 * anything else is the fatal error "Fatal write error on datagram
 * transport".  From sendto() (in_tick 0) an exception that
 * error_received() raises goes to the caller, as in asyncio; from the
 * tick it is reported. */
static int
send_failed(DatagramObject *dg, int in_tick)
{
    if (!PyErr_ExceptionMatches(PyExc_OSError)) {
        return iol_transport_fatal((PyObject *)dg, "Fatal write error on "
                                   "datagram transport");
    }
    PyObject *exc = iol_err_fetch();
    PyObject *proto = Py_NewRef(dg->protocol);
    PyObject *res = PyObject_CallMethodOneArg(
        proto, dg->st->str_error_received, exc);
    Py_DECREF(proto);
    Py_DECREF(exc);
    if (res != NULL) {
        Py_DECREF(res);
        return 0;
    }
    if (!in_tick) {
        return -1;
    }
    PyObject *err = iol_err_fetch();
    int rc = iol_dg_report(dg, err, "protocol.error_received() call "
                                    "failed.");
    Py_XDECREF(err);
    return rc;
}

/* The writable socket's turn: send what is queued, in order, until the
 * kernel says EAGAIN. */
int
iol_dg_flush(DatagramObject *dg)
{
    while (dg->wlen > 0 && dg->life.loop != NULL) {
        iol_dgram d = dg->wq[dg->whead];
        int rc = send_one(dg, d.data, PyBytes_AS_STRING(d.data),
                          PyBytes_GET_SIZE(d.data), d.addr);
        if (rc == 0) {
            return 0; /* still first in line */
        }
        /* Taken off the queue whether it went or failed, as asyncio
         * does; a close() meanwhile may have emptied the queue. */
        if (dg->wlen > 0 && dg->wq[dg->whead].data == d.data) {
            dg->whead++;
            dg->wlen--;
            dg->wsize -= PyBytes_GET_SIZE(d.data) + dg->header;
            if (dg->wlen == 0) {
                dg->whead = 0;
            }
            Py_DECREF(d.data);
            Py_DECREF(d.addr);
        }
        if (rc < 0) {
            return send_failed(dg, 1);
        }
    }
    if (dg->protocol_paused && dg->wsize <= dg->low && dg->life.loop != NULL) {
        PyObject *res = PyObject_CallMethod((PyObject *)dg,
                                            "_maybe_resume_protocol", NULL);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    if (dg->wlen == 0 && dg->life.loop != NULL) {
        if (iol_dg_want(dg, dg->life.smask & ~IOL_WRITE) < 0) {
            return -1;
        }
        /* A close() that waited for the queue ends here. */
        if (iol_trl_drained((PyObject *)dg, &dg->life) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
queue_push(DatagramObject *dg, PyObject *data, const char *buf,
           Py_ssize_t len, PyObject *addr)
{
    if (dg->whead + dg->wlen == dg->wcap) {
        if (dg->whead > 0) {
            memmove(dg->wq, dg->wq + dg->whead, dg->wlen * sizeof(*dg->wq));
            dg->whead = 0;
        }
        else {
            Py_ssize_t ncap = dg->wcap ? dg->wcap * 2 : 8;
            iol_dgram *q = PyMem_Realloc(dg->wq, ncap * sizeof(*q));
            if (q == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            dg->wq = q;
            dg->wcap = ncap;
        }
    }
    /* What is queued must not change: bytes as they are, else a copy. */
    PyObject *keep = PyBytes_CheckExact(data)
                         ? Py_NewRef(data)
                         : PyBytes_FromStringAndSize(buf, len);
    if (keep == NULL) {
        return -1;
    }
    iol_dgram *d = &dg->wq[dg->whead + dg->wlen];
    d->data = keep;
    d->addr = Py_NewRef(addr);
    dg->wlen++;
    dg->wsize += len + dg->header;
    if (dg->wsize > dg->high && !dg->protocol_paused) {
        PyObject *res = PyObject_CallMethod((PyObject *)dg,
                                            "_maybe_pause_protocol", NULL);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    return 0;
}

/* sendto(data, addr=None) */
static PyObject *
Datagram_sendto(DatagramObject *dg, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    PyObject *data = nargs > 0 ? args[0] : NULL;
    PyObject *addr = nargs > 1 ? args[1] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        PyObject **slot = NULL;
        if (PyUnicode_CompareWithASCIIString(k, "data") == 0) {
            slot = &data;
        }
        else if (PyUnicode_CompareWithASCIIString(k, "addr") == 0) {
            slot = &addr;
        }
        if (slot == NULL || *slot != NULL) {
            PyErr_Format(PyExc_TypeError, slot ? "sendto() got multiple "
                         "values for argument %R" : "sendto() got an "
                         "unexpected keyword argument %R", k);
            return NULL;
        }
        *slot = args[nargs + i];
    }
    if (data == NULL || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, data ? "sendto() takes at most 2 "
                        "arguments" : "sendto() missing required argument "
                        "'data'");
        return NULL;
    }
    if (addr == NULL) {
        addr = Py_None;
    }
    if (dg->address == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "transport not set up");
        return NULL;
    }
    if (!PyBytes_Check(data) && !PyByteArray_Check(data) &&
        !PyMemoryView_Check(data)) {
        PyObject *name = PyType_GetName(Py_TYPE(data));
        if (name != NULL) {
            PyErr_Format(PyExc_TypeError, "data argument must be a "
                         "bytes-like object, not %R", name);
            Py_DECREF(name);
        }
        return NULL;
    }
    if (!dg->allow_empty) {
        int t = PyObject_IsTrue(data);
        if (t <= 0) {
            return t < 0 ? NULL : Py_NewRef(Py_None);
        }
    }
    int has_peer = PyObject_IsTrue(dg->address);
    if (has_peer < 0) {
        return NULL;
    }
    if (has_peer) {
        int same = addr == Py_None
                       ? 1
                       : PyObject_RichCompareBool(addr, dg->address, Py_EQ);
        if (same <= 0) {
            if (same == 0) {
                PyErr_Format(PyExc_ValueError, "Invalid address: must be "
                             "None or %S", dg->address);
            }
            return NULL;
        }
        addr = dg->address;
    }
    /* A lost connection drops what a connected socket sends (asyncio
     * warns after a few); once released, every send is dropped so (where
     * asyncio's own transport fails on the socket it no longer has). */
    if ((dg->life.conn_lost && has_peer) || dg->life.loop == NULL) {
        if (dg->life.conn_lost >= IOL_CONNLOST_LOG) {
            PyObject *res = PyObject_CallMethod((PyObject *)dg,
                                                "_warn_lost_write", NULL);
            if (res == NULL) {
                return NULL;
            }
            Py_DECREF(res);
        }
        dg->life.conn_lost++;
        Py_RETURN_NONE;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *ret = NULL;
    Py_INCREF(dg);
    Py_INCREF(addr);
    if (dg->wlen == 0) {
        int rc = send_one(dg, data, view.buf, view.len, addr);
        if (rc > 0) {
            goto ok;
        }
        if (rc < 0) {
            if (send_failed(dg, 0) < 0) {
                goto done;
            }
            goto ok;
        }
        if (iol_dg_want(dg, dg->life.smask | IOL_WRITE) < 0) {
            goto done;
        }
    }
    if (queue_push(dg, data, view.buf, view.len, addr) < 0) {
        goto done;
    }
ok:
    ret = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&view);
    Py_DECREF(addr);
    Py_DECREF(dg);
    return ret;
}

static PyObject *
Datagram_get_write_buffer_size(DatagramObject *dg,
                               PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(dg->wsize);
}

PyMethodDef iol_dgram_send_methods[] = {
    {"sendto", (PyCFunction)(void (*)(void))Datagram_sendto,
     METH_FASTCALL | METH_KEYWORDS,
     "sendto(data, addr=None): send one datagram, or queue it."},
    {"get_write_buffer_size",
     (PyCFunction)Datagram_get_write_buffer_size, METH_NOARGS,
     "Bytes queued and not sent yet (with asyncio's per-datagram count)."},
    {NULL, NULL, 0, NULL},
};
