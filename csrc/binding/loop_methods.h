/*
 * loop_methods.h: the Loop type's Python methods that live outside
 * loop.c, for its method table (part of internal.h; include that).
 */
#ifndef IOL_LOOP_METHODS_H
#define IOL_LOOP_METHODS_H

/* loop_stats.c */
PyObject *Loop_stats(LoopObject *, PyObject *);
PyObject *Loop_set_timing(LoopObject *, PyObject *);
PyObject *Loop_set_slow_threshold(LoopObject *, PyObject *);

/* loop_sched.c: scheduling methods of the Loop type, and the two that
 * asyncio's Future and Task call on every creation. */
PyObject *Loop_get_debug(LoopObject *, PyObject *);
PyObject *Loop_create_future(LoopObject *, PyObject *);
#define IOL_FASTCALL_KW(f) ((PyCFunction)(void (*)(void))(f))
PyObject *Loop_create_task(LoopObject *, PyObject *const *, Py_ssize_t,
                           PyObject *);
PyObject *Loop_call_soon(LoopObject *, PyObject *const *, Py_ssize_t,
                         PyObject *);
PyObject *Loop_call_soon_threadsafe(LoopObject *, PyObject *const *,
                                    Py_ssize_t, PyObject *);
PyObject *Loop_call_later(LoopObject *, PyObject *const *, Py_ssize_t,
                          PyObject *);
PyObject *Loop_call_at(LoopObject *, PyObject *const *, Py_ssize_t,
                       PyObject *);
PyObject *Loop_tornado_call_later(LoopObject *, PyObject *const *,
                                  Py_ssize_t, PyObject *);
PyObject *Loop_tornado_call_at(LoopObject *, PyObject *const *, Py_ssize_t,
                               PyObject *);
PyObject *Loop_add_callback(LoopObject *, PyObject *const *, Py_ssize_t,
                            PyObject *);
PyObject *Loop_add_timeout(LoopObject *, PyObject *const *, Py_ssize_t,
                           PyObject *);
PyObject *Loop_tornado_call_at_wall(LoopObject *, PyObject *const *,
                                    Py_ssize_t, PyObject *);
PyObject *Loop_add_timeout_wall(LoopObject *, PyObject *const *, Py_ssize_t,
                                PyObject *);
PyObject *Loop_remove_timeout(LoopObject *, PyObject *);

/* loop_fd.c: fd methods of the Loop type. */
PyObject *Loop_add_handler(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *Loop_update_handler(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *Loop_remove_handler(LoopObject *, PyObject *);
PyObject *Loop_add_reader(LoopObject *, PyObject *const *, Py_ssize_t,
                          PyObject *);
PyObject *Loop_add_writer(LoopObject *, PyObject *const *, Py_ssize_t,
                          PyObject *);
PyObject *Loop_remove_reader(LoopObject *, PyObject *);
PyObject *Loop_remove_writer(LoopObject *, PyObject *);
PyObject *Loop_fd_info(LoopObject *, PyObject *);
PyObject *Loop_watched_fds(LoopObject *, PyObject *);

#endif /* IOL_LOOP_METHODS_H */
