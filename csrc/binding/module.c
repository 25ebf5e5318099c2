/*
 * module.c: the `ioloop_c._core` module (multi-phase init, PEP 489).
 *
 * Types are heap types made from specs; they and the interned strings the
 * hot paths need live in the module state.
 */
#include "internal.h"

static struct PyModuleDef iol_module_def;

iol_modstate *
iol_state_of_type(PyTypeObject *tp)
{
    /* Works for subclasses (ioloop_c.IOLoop) too: the lookup walks the
     * MRO to the type this module defined. */
    PyObject *mod = PyType_GetModuleByDef(tp, &iol_module_def);
    return (iol_modstate *)PyModule_GetState(mod);
}

static PyObject *
available_backends(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    for (int i = 0; iol_backends[i] != NULL; i++) {
        /* A backend is available only if this kernel lets us create it. */
        void *st = iol_backends[i]->create();
        if (st == NULL) {
            continue;
        }
        iol_backends[i]->destroy(st);
        PyObject *name = PyUnicode_FromString(iol_backends[i]->name);
        if (name == NULL || PyList_Append(list, name) < 0) {
            Py_XDECREF(name);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(name);
    }
    return list;
}

static PyObject *
module_monotonic(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble((double)iol_clock_mono_ns() / 1e9);
}

static int
module_exec(PyObject *mod)
{
    iol_modstate *st = PyModule_GetState(mod);
    iol_ticks_init();
    st->LoopType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &iol_loop_spec, NULL);
    if (st->LoopType == NULL) {
        return -1;
    }
    st->HandleType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &iol_handle_spec, NULL);
    if (st->HandleType == NULL) {
        return -1;
    }
    st->TimerHandleType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &iol_timer_handle_spec, (PyObject *)st->HandleType);
    if (st->TimerHandleType == NULL) {
        return -1;
    }
    if (PyModule_AddType(mod, st->LoopType) < 0 ||
        PyModule_AddType(mod, st->HandleType) < 0 ||
        PyModule_AddType(mod, st->TimerHandleType) < 0) {
        return -1;
    }
#define INTERN(field, text)                                                  \
    if ((st->field = PyUnicode_InternFromString(text)) == NULL) {           \
        return -1;                                                           \
    }
    INTERN(str_report_handle, "_report_handle_exception");
    INTERN(str_report_callback, "_report_callback_exception");
    INTERN(str_callback_result, "_handle_callback_result");
    INTERN(str_total_seconds, "total_seconds");
    INTERN(str_report_slow, "_report_slow_callback");
    INTERN(str_close, "close");
    INTERN(str_data_received, "data_received");
    INTERN(str_get_buffer, "get_buffer");
    INTERN(str_buffer_updated, "buffer_updated");
    INTERN(str_eof_received, "eof_received");
    INTERN(str_pause_writing, "pause_writing");
    INTERN(str_resume_writing, "resume_writing");
    INTERN(str_call_soon, "call_soon");
    if ((st->kw_context = Py_BuildValue("(s)", "context")) == NULL) {
        return -1;
    }
    INTERN(str_call_connection_lost, "_call_connection_lost");
    INTERN(str_peername, "peername");
    INTERN(str_set_result, "set_result");
    INTERN(str_set_exception, "set_exception");
    INTERN(str_task_factory, "_task_factory");
    INTERN(str_Task, "Task");
    INTERN(str_datagram_received, "datagram_received");
    INTERN(str_error_received, "error_received");
#undef INTERN
    if (iol_transport_type_init(mod, st) < 0 ||
        iol_datagram_type_init(mod, st) < 0 ||
        iol_listener_type_init(mod, st) < 0 || iol_tls_init(mod, st) < 0 ||
        iol_iostream_type_init(mod, st) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(mod, "READ", IOL_READ) < 0 ||
        PyModule_AddIntConstant(mod, "WRITE", IOL_WRITE) < 0 ||
        PyModule_AddIntConstant(mod, "ERROR", IOL_ERROR) < 0) {
        return -1;
    }
    return 0;
}

static int
module_traverse(PyObject *mod, visitproc visit, void *arg)
{
    iol_modstate *st = PyModule_GetState(mod);
    Py_VISIT(st->LoopType);
    Py_VISIT(st->HandleType);
    Py_VISIT(st->TimerHandleType);
    Py_VISIT(st->TransportType);
    Py_VISIT(st->DatagramType);
    Py_VISIT(st->IOStreamCoreType);
    Py_VISIT(st->ios_class);
    Py_VISIT(st->ios_handle_events);
    Py_VISIT(st->ios_add_io_state);
    Py_VISIT(st->ios_header_regex);
    Py_VISIT(st->ios_future);
    Py_VISIT(st->ios_retrieve);
    Py_VISIT(st->ios_socket_type);
    Py_VISIT(st->ios_family);
    Py_VISIT(st->ios_set_nodelay);
    Py_VISIT(st->handle_repr);
    Py_VISIT(st->handle_describe);
    Py_VISIT(st->BufferedProtocol);
    Py_VISIT(st->ListenerType);
    Py_VISIT(st->socket_class);
    if (iol_accept_traverse(st, visit, arg) < 0 ||
        iol_streams_traverse(st, visit, arg) < 0) {
        return -1;
    }
    return iol_tls_traverse(st, visit, arg);
}

static int
module_clear(PyObject *mod)
{
    iol_modstate *st = PyModule_GetState(mod);
    Py_CLEAR(st->LoopType);
    Py_CLEAR(st->HandleType);
    Py_CLEAR(st->TimerHandleType);
    Py_CLEAR(st->str_report_handle);
    Py_CLEAR(st->str_report_callback);
    Py_CLEAR(st->str_callback_result);
    Py_CLEAR(st->str_total_seconds);
    Py_CLEAR(st->str_report_slow);
    Py_CLEAR(st->str_close);
    Py_CLEAR(st->TransportType);
    Py_CLEAR(st->IOStreamCoreType);
    Py_CLEAR(st->ios_class);
    Py_CLEAR(st->ios_handle_events);
    Py_CLEAR(st->ios_add_io_state);
    Py_CLEAR(st->ios_header_regex);
    Py_CLEAR(st->ios_future);
    Py_CLEAR(st->ios_retrieve);
    Py_CLEAR(st->ios_socket_type);
    Py_CLEAR(st->ios_family);
    Py_CLEAR(st->ios_set_nodelay);
    Py_CLEAR(st->handle_repr);
    Py_CLEAR(st->handle_describe);
    for (int i = 0; i < IOL_IOS_NSTR; i++) {
        Py_CLEAR(st->ios_str[i]);
    }
    Py_CLEAR(st->BufferedProtocol);
    Py_CLEAR(st->str_data_received);
    Py_CLEAR(st->str_get_buffer);
    Py_CLEAR(st->str_buffer_updated);
    Py_CLEAR(st->str_eof_received);
    Py_CLEAR(st->str_pause_writing);
    Py_CLEAR(st->str_resume_writing);
    Py_CLEAR(st->str_call_soon);
    Py_CLEAR(st->kw_context);
    Py_CLEAR(st->str_call_connection_lost);
    Py_CLEAR(st->str_peername);
    Py_CLEAR(st->str_set_result);
    Py_CLEAR(st->str_set_exception);
    Py_CLEAR(st->str_task_factory);
    Py_CLEAR(st->str_Task);
    Py_CLEAR(st->DatagramType);
    Py_CLEAR(st->str_datagram_received);
    Py_CLEAR(st->str_error_received);
    Py_CLEAR(st->ListenerType);
    Py_CLEAR(st->socket_class);
    Py_CLEAR(st->kw_fileno);
    iol_accept_clear(st);
    iol_streams_clear(st);
    iol_tls_clear(st);
    iol_handle_freelists_clear(st);
    return 0;
}

static void
module_free(void *mod)
{
    module_clear((PyObject *)mod);
}

int
iol_intern_names(const char *const *names, PyObject **out, int n)
{
    for (int i = 0; i < n; i++) {
        out[i] = PyUnicode_InternFromString(names[i]);
        if (out[i] == NULL) {
            while (i-- > 0) {
                Py_CLEAR(out[i]);
            }
            return -1;
        }
    }
    return 0;
}

static PyMethodDef module_methods[] = {
    {"available_backends", available_backends, METH_NOARGS,
     "Names of the backends usable on this host, best first."},
    {"monotonic", module_monotonic, METH_NOARGS,
     "The engine's monotonic clock, in seconds."},
    {"_accept_configure", iol_accept_configure, METH_VARARGS,
     "The transport class accepted connections are made of in C, its "
     "__init__, the TransportTable type, and whether Server._attach "
     "takes the transport."},
    {"_streams_configure", iol_streams_configure, METH_VARARGS,
     "asyncio's StreamReaderProtocol and StreamReader, and their "
     "data_received, _stream_reader, feed_data and _wakeup_waiter, whose "
     "read step the native transport runs in C while they are these."},
    {"_iostream_configure", iol_ios_configure, METH_VARARGS,
     "The IOStream class on the C event path, and Tornado's own "
     "_handle_events and _add_io_state."},
    {"_handle_repr_configure", iol_handle_repr_configure, METH_VARARGS,
     "The functions that make a handle's repr as asyncio's Handle does, "
     "called with (handle, debug, when), when None for a Handle; and the "
     "name asyncio's reports give a handle, called with (handle)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef iol_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ioloop_c._core",
    .m_doc = "The native core of ioloop_c.",
    .m_size = sizeof(iol_modstate),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&iol_module_def);
}
