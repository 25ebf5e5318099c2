"""IOLoop.current(), make_current(), clear_current()."""

import ioloop_c


def test_new_ioloop_becomes_current_and_close_clears_it():
    ioloop_c.IOLoop.clear_current()
    lp = ioloop_c.IOLoop()
    assert ioloop_c.IOLoop.current() is lp
    lp.close()
    assert ioloop_c.IOLoop.current(instance=False) is None


def test_make_current_and_clear_current():
    ioloop_c.IOLoop.clear_current()
    a = ioloop_c.IOLoop(make_current=False)
    b = ioloop_c.IOLoop(make_current=False)
    try:
        assert ioloop_c.IOLoop.current(instance=False) is None
        b.make_current()
        assert ioloop_c.IOLoop.current() is b
        ioloop_c.IOLoop.clear_current()
        assert ioloop_c.IOLoop.current(instance=False) is None
    finally:
        a.close()
        b.close()


def test_current_creates_one_when_asked():
    ioloop_c.IOLoop.clear_current()
    lp = ioloop_c.IOLoop.current()
    try:
        assert isinstance(lp, ioloop_c.IOLoop)
        assert ioloop_c.IOLoop.current() is lp
    finally:
        lp.close()


def test_current_is_the_running_loop_inside_callbacks():
    ioloop_c.IOLoop.clear_current()
    a = ioloop_c.IOLoop(make_current=False)
    seen = []
    a.add_callback(lambda: (seen.append(ioloop_c.IOLoop.current()), a.stop()))
    a.start()
    a.close()
    assert seen == [a]


def test_current_is_per_thread():
    import threading

    ioloop_c.IOLoop.clear_current()
    main = ioloop_c.IOLoop()
    seen = []
    th = threading.Thread(target=lambda: seen.append(ioloop_c.IOLoop.current(instance=False)))
    th.start()
    th.join()
    main.close()
    assert seen == [None]
