/*
 * tls_read.c: the read step of a native transport under a
 * NativeSSLProtocol (see tls.c).
 *
 * In the WRAPPED state with a plain Protocol app that is reading, this is
 * SSLProtocol's get_buffer() + buffer_updated() -> _do_read() ->
 * _do_read__copied() in C: recv() into the protocol's own buffer, one
 * incoming.write(), SSL reads (into that buffer, see decrypt()) until the
 * BIO is empty, one data_received() with all the plaintext, then
 * _process_outgoing() and
 * _control_ssl_reading().  In any other state, the transport's plain
 * BufferedProtocol step calls SSLProtocol's own methods.
 */
#include "internal.h"

#include <errno.h>

#include "../engine/sock.h"

static const char buffer_updated_failed[] =
    "Fatal error: protocol.buffer_updated() call failed.";

/* Whether another SSL read could return anything: bytes in the BIO not
 * yet taken, or plaintext the SSL object holds.  When neither, OpenSSL
 * (which Python never sets to read ahead) has nothing to work on, and
 * the read would only raise SSLWantReadError: an exception per record. */
static int
more_to_read(iol_modstate *st, const iol_tls_conn *k, PyObject *inner,
             PyObject *incoming)
{
    if (k != NULL) {
        return iol_ossl_more(k);
    }
    Py_ssize_t n = iol_tls_pending(st, incoming);
    if (n != 0) {
        return n < 0 ? -1 : 1;
    }
    PyObject *p = iol_tls_ccall(st, IOL_TD_SSL_PENDING, inner,
                                IOL_TN_PENDING, NULL);
    n = iol_tls_as_size(p);
    Py_XDECREF(p);
    return n < 0 ? -1 : n > 0;
}

/* _SSLSocket.read(0, view): decrypt into view (0: as much as it holds),
 * through the descriptor when inner is exactly an _SSLSocket. */
static PyObject *
read_into(iol_modstate *st, PyObject *inner, char *at, Py_ssize_t len)
{
    PyObject *view = PyMemoryView_FromMemory(at, len, PyBUF_WRITE);
    PyObject *zero = view ? PyLong_FromLong(0) : NULL;
    PyObject *res = NULL;
    if (zero != NULL) {
        PyObject *args[3] = {inner, zero, view};
        res = Py_IS_TYPE(inner, (PyTypeObject *)st->tls_sslsock_type)
                  ? PyObject_Vectorcall(st->tls_desc[IOL_TD_SSL_READ], args,
                                        3, NULL)
                  : PyObject_VectorcallMethod(st->tls_names[IOL_TN_READ],
                                              args, 3, NULL);
    }
    Py_XDECREF(view);
    Py_XDECREF(zero);
    return res;
}

/* Decrypt until the BIO has nothing more: the plaintext, in one bytes
 * object, into *data (NULL if none); *eof set on a close_notify.
 *
 * SSLProtocol reads each record with read(max_size), a fresh 256 KiB
 * bytes object cut down to the record (above glibc's mmap threshold).
 * Here the records go into the protocol's own buffer, whose received
 * bytes the BIO already holds, and one exact-size bytes object is made
 * from it: the same data, joined as SSLProtocol joins it.  The buffer is
 * held exported meanwhile, so nothing (an ssl message callback) can
 * resize it under the reads. */
static int
decrypt(iol_tls_ctx *c, PyObject *inner, PyObject *incoming, PyObject *buf,
        Py_ssize_t max, PyObject **data, int *eof)
{
    iol_modstate *st = c->st;
    /* No Python code that could touch the SSL object runs in this loop
     * (only bytes and list calls, and the read method itself). */
    const iol_tls_conn *k = iol_tls_direct(c);
    Py_buffer view;
    if (PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) < 0) {
        return -1;
    }
    int rc = -1;
    PyObject *list = NULL, *part = NULL;
    char *base = view.buf;
    Py_ssize_t off = 0;
    for (;;) {
        if (off == view.len) {
            /* Full: keep what it holds aside, go on from its start. */
            part = PyBytes_FromStringAndSize(base, off);
            if (part == NULL ||
                (list == NULL && (list = PyList_New(0)) == NULL) ||
                PyList_Append(list, part) < 0) {
                goto done;
            }
            Py_CLEAR(part);
            off = 0;
        }
        /* No read asks for more than max_size, as SSLProtocol's. */
        Py_ssize_t want = view.len - off;
        if (want > max) {
            want = max;
        }
        if (k != NULL) {
            size_t got;
            int r = iol_ossl_read(k, base + off, (size_t)want, &got);
            if (r == IOL_OSSL_WANT) {
                break;
            }
            if (r == IOL_OSSL_OK) {
                off += (Py_ssize_t)got;
                if (!iol_ossl_more(k)) {
                    break;
                }
                continue;
            }
            /* Anything else: the method meets the same state and says
             * what SSLProtocol would hear (0 for a close_notify, or the
             * exception). */
        }
        PyObject *res = read_into(st, inner, base + off, want);
        if (res == NULL) {
            if (!PyErr_ExceptionMatches(st->tls_again)) {
                goto done;
            }
            PyErr_Clear();
            break;
        }
        Py_ssize_t n = iol_tls_as_size(res);
        Py_DECREF(res);
        if (n <= 0) {
            if (n < 0) {
                goto done;
            }
            *eof = 1;
            break;
        }
        off += n > want ? want : n;
        int more = more_to_read(st, NULL, inner, incoming);
        if (more <= 0) {
            if (more < 0) {
                goto done;
            }
            break;
        }
    }
    if (off > 0) {
        part = PyBytes_FromStringAndSize(base, off);
        if (part == NULL || (list != NULL && PyList_Append(list, part) < 0)) {
            goto done;
        }
    }
    if (list != NULL) {
        *data = iol_tls_call(st, st->tls_empty, IOL_TN_JOIN, list, NULL);
        if (*data == NULL) {
            goto done;
        }
    }
    else {
        *data = part;
        part = NULL;
    }
    rc = 0;
done:
    PyBuffer_Release(&view);
    Py_XDECREF(list);
    Py_XDECREF(part);
    return rc;
}

/* _do_read() in the WRAPPED state with a plain Protocol app: 0, or -1
 * for an exception that leaves buffer_updated(). */
static int
do_read(iol_tls_ctx *c, PyObject *inner, PyObject *incoming, PyObject *buf,
        Py_ssize_t max)
{
    PyObject *data = NULL, *app = NULL;
    int eof = 0;
    int rc = decrypt(c, inner, incoming, buf, max, &data, &eof);
    if (rc == 0 && data != NULL) {
        app = iol_tls_get(c, IOL_TN_APP_PROTOCOL);
        rc = app ? iol_tls_call_none(c->st, app, IOL_TN_DATA_RECEIVED, data,
                                     NULL)
                 : -1;
    }
    Py_XDECREF(data);
    Py_XDECREF(app);
    if (rc == 0 && eof) {
        rc = iol_tls_sp_call(c, IOL_TN_CALL_EOF, NULL, NULL);
        if (rc == 0) {
            rc = iol_tls_sp_call(c, IOL_TN_START_SHUTDOWN, NULL, NULL);
        }
    }
    if (rc == 0) {
        PyObject *backlog = iol_tls_get(c, IOL_TN_WRITE_BACKLOG);
        Py_ssize_t n = backlog ? PyObject_Size(backlog) : -1;
        Py_XDECREF(backlog);
        rc = n < 0 ? -1
             : n   ? iol_tls_sp_call(c, IOL_TN_DO_WRITE, NULL, NULL)
                   : iol_tls_outgoing(c);
    }
    if (rc == 0) {
        rc = iol_tls_control_reading(c, incoming);
    }
    return rc < 0 ? iol_tls_fatal(c, "Fatal error on SSL protocol") : 0;
}

/* 1 if the C read may run: WRAPPED, the app reading and not a
 * BufferedProtocol, the buffer as large as get_buffer() would leave it,
 * the SSL object the stdlib's; with the protocol's buffer, its max_size,
 * the SSL object's C object and the incoming BIO.  0: take
 * SSLProtocol's own get_buffer() and buffer_updated().  -1: an error. */
static int
read_ready(iol_tls_ctx *c, PyObject **buf, Py_ssize_t *max,
           PyObject **inner, PyObject **incoming)
{
    PyObject *state = iol_tls_get(c, IOL_TN_STATE);
    if (state == NULL) {
        return -1;
    }
    int wrapped = state == c->st->tls_wrapped;
    Py_DECREF(state);
    if (!wrapped) {
        return 0;
    }
    int no = iol_tls_true(c, IOL_TN_APP_READING_PAUSED);
    if (no == 0) {
        no = iol_tls_true(c, IOL_TN_APP_IS_BUFFER);
    }
    if (no != 0) {
        return no < 0 ? -1 : 0;
    }
    *buf = iol_tls_get(c, IOL_TN_SSL_BUFFER);
    if (*buf == NULL) {
        return -1;
    }
    /* A class attribute (256 KiB), unless the instance has its own. */
    PyObject *m = PyObject_GetAttr(c->sp, c->st->tls_names[IOL_TN_MAX_SIZE]);
    *max = iol_tls_as_size(m);
    Py_XDECREF(m);
    if (*max < 0) {
        Py_CLEAR(*buf);
        return -1;
    }
    /* get_buffer(-1) would replace a buffer smaller than max_size. */
    if (!PyByteArray_CheckExact(*buf) || *max == 0 ||
        PyByteArray_GET_SIZE(*buf) < *max) {
        Py_CLEAR(*buf);
        return 0;
    }
    *inner = iol_tls_inner(c);
    *incoming = *inner ? iol_tls_get(c, IOL_TN_INCOMING) : NULL;
    if (*incoming == NULL) {
        Py_CLEAR(*buf);
        Py_CLEAR(*inner);
        return PyErr_Occurred() ? -1 : 0;
    }
    return 1;
}

/* incoming.write(received): straight into the BIO when the direct calls
 * may run (a memory BIO's write fails only for want of memory, and
 * then the method raises what it raises), else by the method. */
static int
feed(iol_tls_ctx *c, PyObject *incoming, char *at, ssize_t n)
{
    const iol_tls_conn *k = iol_tls_direct(c);
    if (k != NULL && n <= INT_MAX &&
        iol_ossl_bio_write(k->rbio, at, (int)n) == (int)n) {
        return 0;
    }
    PyObject *view = PyMemoryView_FromMemory(at, n, PyBUF_READ);
    PyObject *res = view ? iol_tls_ccall(c->st, IOL_TD_BIO_WRITE, incoming,
                                         IOL_TN_WRITE, view)
                         : NULL;
    Py_XDECREF(view);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

int
iol_tls_read(TransportObject *tr)
{
    iol_tls_ctx c;
    if (iol_tls_open(&c, tr->st, tr->protocol) < 0) {
        return iol_tr_fatal(tr, buffer_updated_failed);
    }
    PyObject *buf = NULL, *inner = NULL, *incoming = NULL;
    int rc;
    Py_ssize_t max = 0;
    int ready = read_ready(&c, &buf, &max, &inner, &incoming);
    if (ready <= 0) {
        rc = ready < 0 ? iol_tr_fatal(tr, buffer_updated_failed)
                       : iol_tr_read_buffered(tr);
        goto done;
    }
    /* No Python code runs between here and the BIO's copy, so the
     * buffer cannot change under the view. */
    ssize_t n = iol_sock_recv(tr->fd, PyByteArray_AS_STRING(buf),
                              (size_t)PyByteArray_GET_SIZE(buf));
    if (n <= 0) {
        rc = n < 0 ? iol_tr_read_error(tr) : iol_tr_on_eof(tr);
        goto done;
    }
    rc = feed(&c, incoming, PyByteArray_AS_STRING(buf), n);
    if (rc == 0) {
        rc = do_read(&c, inner, incoming, buf, max);
    }
    if (rc < 0) {
        rc = iol_tr_fatal(tr, buffer_updated_failed);
    }
done:
    iol_tls_close(&c);
    Py_XDECREF(buf);
    Py_XDECREF(inner);
    Py_XDECREF(incoming);
    return rc;
}
