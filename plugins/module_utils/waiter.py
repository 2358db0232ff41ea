# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the collection's Coder services wait: read, decide, sleep a growing delay, read again.

:func:`poll` hands each object ``read()`` returns (or the ``first`` one the caller already has) and the seconds waited
so far to ``check``. ``check`` returns :data:`AGAIN` to keep waiting, anything else (``None`` included) to end the wait
with that value, or raises: what a failed job or a timeout means, and the words for it, stay with the caller. Between
reads it sleeps ``delay`` seconds, growing by ``factor`` up to ``max_delay``. ``sleep`` and ``clock`` are the
caller's (tests hand in fakes).
"""

AGAIN = object()


def poll(read, check, sleep, clock, delay=0.5, max_delay=5.0, factor=1.5, first=None):
    """Wait until ``check(obj, waited)`` returns something other than :data:`AGAIN`; return that."""
    start = clock()
    obj = read() if first is None else first
    while True:
        verdict = check(obj, clock() - start)
        if verdict is not AGAIN:
            return verdict
        sleep(delay)
        delay = min(delay * factor, max_delay)
        obj = read()
