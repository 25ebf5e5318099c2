/*
 * datagram.h: the native datagram transport (part of internal.h; include
 * that).  Like the stream transport, the type is made at import, from
 * asyncio's transports._FlowControlMixin and DatagramTransport, so that
 * it is an asyncio.DatagramTransport to everything that checks;
 * ioloop_c/_datagram.py subclasses it with the parts off the data path.
 */
#ifndef IOL_DATAGRAM_H
#define IOL_DATAGRAM_H

#include <sys/socket.h>

/* The largest datagram one read takes (asyncio's max_size); longer
 * ones are cut, as recvfrom(max_size) cuts them. */
#define IOL_DGRAM_MAX (256 * 1024)

/* Make the type into the module state (left NULL, and 0 returned, where
 * asyncio's transport classes are laid out differently). */
int iol_datagram_type_init(PyObject *mod, iol_modstate *st);

/* Run a datagram transport's fd events in the tick: read datagrams into
 * the loop's buffer and hand them to the protocol, send the queue.  -1
 * only for SystemExit / KeyboardInterrupt. */
int iol_datagram_event(PyObject *tr, int mask);

/* One queued datagram: exact bytes and the address sendto() got. */
typedef struct {
    PyObject *data;
    PyObject *addr;
} iol_dgram;

typedef struct {
    PyObject_HEAD
    PyObject *base_slots[IOL_TR_BASE_SLOTS];
    iol_modstate *st;
    iol_trlife life;
    PyObject *protocol;
    PyObject *address;  /* the peer sendto() insists on, or None */
    PyObject *rx_addr;  /* the last sender, as Python has it, or NULL */
    PyObject *tx_addr;  /* the last address sendto() parsed, or NULL */
    iol_dgram *wq;      /* the queue: wq[whead .. whead + wlen) */
    Py_ssize_t whead, wlen, wcap;
    Py_ssize_t wsize;   /* queued bytes plus `header` per datagram */
    Py_ssize_t high, low;
    Py_ssize_t header;  /* asyncio 3.12+ counts 8 bytes per datagram */
    struct sockaddr_storage rx_sa, tx_sa;
    socklen_t rx_salen, tx_salen;
    int fd, family;
    int connected;      /* a peer: send() and no address */
    int allow_empty;    /* asyncio 3.12+ sends empty datagrams */
    char protocol_connected, protocol_paused;
} DatagramObject;

/* datagram_send.c, for datagram.c */
extern PyMethodDef iol_dgram_send_methods[];
int iol_dg_want(DatagramObject *dg, int want);
int iol_dg_flush(DatagramObject *dg);
void iol_dg_queue_clear(DatagramObject *dg);
int iol_dg_report(DatagramObject *dg, PyObject *exc, const char *message);

#endif /* IOL_DATAGRAM_H */
