"""kit/progress.py: plain lines (no carriage returns) in logs, tqdm on a terminal; time is injected."""
from __future__ import annotations

import io

from src.kit import progress as progress_mod
from src.kit.progress import progress


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_one_line_per_tenth_and_no_carriage_returns():
    s, clock = io.StringIO(), Clock()
    with progress(total=100, desc="features train", unit="clip", stream=s, clock=clock, min_seconds=0) as bar:
        for _ in range(100):
            clock.t += 0.01
            bar.update()
    out = s.getvalue()
    assert "\r" not in out
    lines = out.splitlines()
    steps = [ln for ln in lines if "done" not in ln]
    assert len(steps) == 10
    assert steps[0] == "features train: 10/100 clips (10%) 0.1s"
    assert steps[2].startswith("features train: 30/100 clips (30%)")  # no float slip at 30%
    assert steps[-1].startswith("features train: 100/100 clips (100%)")
    assert lines[-1] == "features train: done, 100 clips in 1.0s"


def test_plain_is_the_default_off_a_terminal():
    s = io.StringIO()
    bar = progress(total=10, desc="x", stream=s, clock=Clock(), min_seconds=0)
    assert isinstance(bar, progress_mod.PlainProgress)
    bar.update(10)
    bar.close()
    assert s.getvalue().splitlines() == ["x: 10/10 it (100%) 0.0s", "x: done, 10 it in 0.0s"]


def test_time_based_line_with_unknown_total():
    s, clock = io.StringIO(), Clock()
    bar = progress(desc="reading", unit="row", stream=s, every_seconds=30.0, clock=clock, min_seconds=0)
    for _ in range(5):
        clock.t += 10
        bar.update(3)
    # lines at 30 s (n=9) only: 40 s and 50 s are under 30 s after that line
    assert s.getvalue().splitlines() == ["reading: 9 rows 30.0s"]
    clock.t += 20
    bar.update(1)
    assert s.getvalue().splitlines()[-1] == "reading: 16 rows 70.0s"
    bar.close()
    assert s.getvalue().splitlines()[-1] == "reading: done, 16 rows in 70.0s"


def test_time_based_line_between_fractions_and_monkeypatched_monotonic(monkeypatch):
    clock = Clock(50.0)
    monkeypatch.setattr(progress_mod.time, "monotonic", clock)
    s = io.StringIO()
    bar = progress(total=1000, desc="slow", stream=s, every_seconds=30.0)
    clock.t += 31
    bar.update(1)
    assert s.getvalue() == "slow: 1/1000 it (0%) 31.0s\n"
    bar.close()
    assert s.getvalue().splitlines()[-1] == "slow: done, 1 it in 31.0s"


def test_iteration_yields_every_item_and_closes():
    s = io.StringIO()
    items = list(range(37))
    got = [x for x in progress(items, desc="it", stream=s, clock=Clock(), min_seconds=0)]
    assert got == items
    lines = s.getvalue().splitlines()
    assert lines[-1] == "it: done, 37 it in 0.0s"
    assert "it: 4/37 it (10%) 0.0s" in lines  # total taken from len()


def test_iteration_over_a_generator_with_a_total():
    s = io.StringIO()
    got = list(progress((x * 2 for x in range(20)), total=20, stream=s, clock=Clock(), min_seconds=0))
    assert got == [x * 2 for x in range(20)]
    assert s.getvalue().splitlines()[-1] == "done, 20 it in 0.0s"  # no desc: no "desc: " prefix


def test_empty_work_prints_nothing():
    for kw in ({"total": 0}, {"total": 5}, {}):
        s = io.StringIO()
        with progress(stream=s, clock=Clock(), **kw):
            pass
        assert s.getvalue() == ""
    s = io.StringIO()
    assert list(progress([], desc="empty", stream=s)) == []
    assert s.getvalue() == ""


def test_disable_prints_nothing_on_any_stream():
    for stream in (io.StringIO(), FakeTTY()):
        bar = progress(total=3, desc="quiet", stream=stream, disable=True)
        for _ in range(3):
            bar.update()
        bar.set_postfix_str("loss 0.1")
        bar.close()
        assert stream.getvalue() == ""
    assert list(progress([1, 2], stream=io.StringIO(), disable=True)) == [1, 2]


def test_set_postfix_str_in_plain_mode():
    s = io.StringIO()
    bar = progress(total=2, desc="fit", stream=s, clock=Clock(), min_seconds=0)
    bar.set_postfix_str("loss 0.5")
    bar.update(2)
    bar.close()
    assert s.getvalue().splitlines()[0] == "fit: 2/2 it (100%) 0.0s loss 0.5"


def test_close_twice_prints_done_once():
    s = io.StringIO()
    bar = progress(total=1, stream=s, clock=Clock(), min_seconds=0)
    bar.update()
    bar.close()
    bar.close()
    assert s.getvalue().count("done") == 1


def test_tqdm_when_forced_or_on_a_terminal():
    s = io.StringIO()
    with progress(total=5, desc="bar", unit="clip", stream=s, plain=False) as bar:
        for _ in range(5):
            bar.update()
        bar.set_postfix_str("ok")
    assert type(bar).__name__ == "tqdm"
    assert list(progress([1, 2, 3], stream=io.StringIO(), plain=False)) == [1, 2, 3]
    tty = FakeTTY()
    bar = progress(total=2, desc="tty", stream=tty)
    assert not isinstance(bar, progress_mod.PlainProgress)
    bar.update(2)
    bar.close()
    assert "tty" in tty.getvalue()  # tqdm drew on the stream it was given


def test_plain_forced_on_a_terminal():
    tty = FakeTTY()
    bar = progress(total=1, desc="p", stream=tty, plain=True, clock=Clock())
    bar.update()
    bar.close()
    assert "\r" not in tty.getvalue() and tty.getvalue().endswith("p: done, 1 it in 0.0s\n")


def test_short_work_prints_only_its_done_line():
    """Lines at least min_seconds apart: a 10-clip job done in a second says so once, not ten times."""
    s = io.StringIO()
    t = [0.0]
    bar = progress(total=10, desc="features", unit="clip", stream=s, clock=lambda: t[0])
    for _ in range(10):
        t[0] += 0.05
        bar.update(1)
    bar.close()
    assert s.getvalue().splitlines() == ["features: done, 10 clips in 0.5s"]


def test_units_in_plain_lines():
    assert [progress_mod.units(n, u) for n, u in [(1, "clip"), (2, "clip"), (345, "category"), (1, "category"),
                                                  (0, "drawing"), (5, "day"), (9, "it")]] == \
        ["clip", "clips", "categories", "category", "drawings", "days", "it"]
