"""IOLoop.current(), make_current(), clear_current()."""

import threading

import pytest

import ioloop_c

pytestmark = pytest.mark.timeout(30)

IOLoop = ioloop_c.IOLoop


@pytest.fixture(autouse=True)
def no_current_loop():
    IOLoop.clear_current()
    yield
    IOLoop.clear_current()


def test_new_ioloop_becomes_current_and_close_clears_it(backend):
    lp = IOLoop(backend=backend)
    assert IOLoop.current() is lp
    assert IOLoop.current(instance=False) is lp
    lp.close()
    assert IOLoop.current(instance=False) is None


def test_the_loop_fixture_is_current(loop):
    assert IOLoop.current() is loop


def test_make_current_false(backend):
    a = IOLoop(backend=backend, make_current=False)
    try:
        assert IOLoop.current(instance=False) is None
    finally:
        a.close()


def test_make_current_and_clear_current(backend):
    a = IOLoop(backend=backend, make_current=False)
    b = IOLoop(backend=backend, make_current=False)
    try:
        b.make_current()
        assert IOLoop.current() is b
        a.make_current()
        assert IOLoop.current() is a
        IOLoop.clear_current()
        assert IOLoop.current(instance=False) is None
    finally:
        a.close()
        b.close()


def test_clear_current_when_none_is_current():
    IOLoop.clear_current()
    IOLoop.clear_current()
    assert IOLoop.current(instance=False) is None


def test_closing_another_loop_keeps_the_current_one(backend):
    a = IOLoop(backend=backend)
    b = IOLoop(backend=backend, make_current=False)
    try:
        b.close()
        assert IOLoop.current() is a
    finally:
        a.close()


def test_current_creates_one_when_asked():
    assert IOLoop.current(instance=False) is None
    lp = IOLoop.current()
    try:
        assert isinstance(lp, IOLoop)
        assert IOLoop.current() is lp
        assert IOLoop.current(instance=False) is lp
    finally:
        lp.close()


def test_current_is_the_running_loop_inside_callbacks(backend):
    a = IOLoop(backend=backend, make_current=False)
    other = IOLoop(backend=backend)  # current, but not the one running
    seen = []
    try:
        a.add_callback(lambda: (seen.append(IOLoop.current()), a.stop()))
        a.start()
        assert seen == [a]
        assert IOLoop.current() is other
    finally:
        a.close()
        other.close()


def test_current_is_per_thread(backend):
    main = IOLoop(backend=backend)
    seen = []

    def in_thread():
        seen.append(IOLoop.current(instance=False))
        own = IOLoop.current()
        seen.append(own)
        own.close()

    th = threading.Thread(target=in_thread)
    th.start()
    th.join()
    try:
        assert seen[0] is None
        assert isinstance(seen[1], IOLoop) and seen[1] is not main
        assert IOLoop.current() is main
    finally:
        main.close()
