"""Sequential Monte Carlo p-values (Besag and Clifford, Biometrika 1991): fine where the decision needs it, cheap
elsewhere.

A permutation p-value ranks the observed statistic among n null draws (made-up distractors, or other people's
faces) and cannot fall below 1/(n+1). An audit of m people controlled at false-discovery rate q needs p-values near
q/m, far below 1/1,000, but most people are nowhere near that threshold. Besag and Clifford draw null values one at
a time, in a fixed order, and stop at the h-th draw at or above the observed value:

    stopped at draw l < n_max with h exceedances:   p = h / l
    all n_max draws made (g exceedances, g <= h):    p = (g + 1) / (n_max + 1)    (the full permutation p-value)

which is a valid p-value, P(p <= u) <= u for every u, when the observed value is exchangeable with the draws.
Here the first `n_first` draws (the question's own distractors) are always made: a person with at least h
exceedances among them keeps the fixed-n value (g + 1) / (n_first + 1), exactly today's p-value; the rest
continue. That hybrid is still valid: for u below (h + 1) / (n_first + 1) it flags only where Besag-Clifford
does, and above it only where the fixed-n test does.

`SequentialPValues` keeps the per-person state; the caller feeds it blocks of exceedance indicators, in the
draws' order, only for the people still running (`active`). `sequential_p_values` is the slow obvious twin the
tests pit it against.
"""

from __future__ import annotations

import numpy as np

H_EXCEEDANCES = 10  # Besag-Clifford's h: stop at the 10th null draw at or above the observed value


def smallest_reachable_p(n_max: int, n_first: int | None = None) -> float:
    """The smallest p-value a person can get with at most `n_max` null draws (fixed-n or sequential alike):
    1 / (n_max + 1). `n_first` is accepted for symmetry with the state; it does not lower the floor."""
    return 1.0 / (1 + max(int(n_max), 0 if n_first is None else int(n_first)))


class SequentialPValues:
    """Per-person Besag-Clifford state: draws made, exceedances seen, stopped or not, and the p-value.

    Start from the first block (counts over the always-made draws), then `add` blocks for `active()` people."""

    def __init__(self, n_first: np.ndarray, exceed_first: np.ndarray, n_max: np.ndarray | int,
                 h: int = H_EXCEEDANCES):
        self.h = int(h)
        self.drawn_ = np.asarray(n_first, dtype=np.int64).copy()
        self.exceed_ = np.asarray(exceed_first, dtype=np.int64).copy()
        self.n_max_ = np.broadcast_to(np.asarray(n_max, dtype=np.int64), self.drawn_.shape).copy()
        self.n_max_ = np.maximum(self.n_max_, self.drawn_)
        self.p_ = np.where(self.exceed_ >= self.h, (1.0 + self.exceed_) / (1.0 + self.drawn_), np.nan)
        self._finish_full()

    def _finish_full(self) -> None:
        """People who have made every draw without reaching h exceedances: the full permutation p-value."""
        done = np.isnan(self.p_) & (self.drawn_ >= self.n_max_)
        self.p_[done] = (1.0 + self.exceed_[done]) / (1.0 + self.n_max_[done])

    def active(self) -> np.ndarray:
        """The people still drawing."""
        return np.flatnonzero(np.isnan(self.p_))

    def add(self, rows: np.ndarray, exceed: np.ndarray, valid: np.ndarray | None = None) -> None:
        """The next draws, in order, for `rows` (active people): exceed[r, j] is draw j at or above the observed
        value; `valid[r, j]` False drops a draw from that person's stream (their own face in a face bank).
        Draws beyond a person's n_max, or after their h-th exceedance, are ignored."""
        rows = np.asarray(rows, dtype=np.int64)
        exceed = np.asarray(exceed, dtype=bool)
        valid = np.ones_like(exceed) if valid is None else np.asarray(valid, dtype=bool)
        if not len(rows) or not exceed.shape[1]:
            return
        room = (self.n_max_[rows] - self.drawn_[rows])[:, None]
        cum_drawn = np.cumsum(valid, axis=1)
        valid = valid & (cum_drawn <= room)  # never past n_max
        cum_drawn = np.cumsum(valid, axis=1)
        cum_exc = self.exceed_[rows][:, None] + np.cumsum(exceed & valid, axis=1)
        hit = (cum_exc >= self.h) & valid & exceed
        stops = hit.any(axis=1)
        first = np.argmax(hit, axis=1)
        r_stop = rows[stops]
        l_stop = self.drawn_[r_stop] + cum_drawn[stops, first[stops]]
        # the h-th exceedance at the last draw allowed is also a full run: the full permutation p-value
        self.p_[r_stop] = np.where(l_stop >= self.n_max_[r_stop], (1.0 + self.h) / (1.0 + l_stop), self.h / l_stop)
        self.drawn_[r_stop] = l_stop
        self.exceed_[r_stop] = self.h
        go = rows[~stops]
        self.drawn_[go] += cum_drawn[~stops, -1]
        self.exceed_[go] = cum_exc[~stops, -1]
        self._finish_full()

    def stop(self, rows: np.ndarray) -> None:
        """No more draws for `rows` (the lists ran out): the full p-value of what they drew."""
        self.n_max_[rows] = self.drawn_[rows]
        self._finish_full()

    def p_values(self) -> np.ndarray:
        """Every person's p-value; people still drawing are given the full p-value of what they have drawn so
        far, which is what they would get if n_max were where they stand (only reached if the caller stops)."""
        p = self.p_.copy()
        run = np.isnan(p)
        p[run] = (1.0 + self.exceed_[run]) / (1.0 + self.drawn_[run])
        return p


def sequential_p_values(observed, draws, n_first: int, n_max: int, h: int = H_EXCEEDANCES) -> np.ndarray:
    """The slow obvious twin: per person, walk the null draws (a row of `draws`, NaN = not a draw for this
    person) in order and apply the rule in the module docstring."""
    out = []
    for t, row in zip(np.asarray(observed, dtype=np.float64), np.asarray(draws, dtype=np.float64)):
        row = row[~np.isnan(row)][:n_max]
        first = row[:n_first]
        g = int((first >= t).sum())
        if g >= h or len(row) <= len(first):
            out.append((1.0 + g) / (1.0 + len(first)) if g >= h else (1.0 + g) / (1.0 + len(row)))
            continue
        p = None
        for j in range(len(first), len(row)):
            g += int(row[j] >= t)
            if g >= h:
                p = h / (j + 1) if j + 1 < len(row) else (1.0 + g) / (1.0 + len(row))
                break
        out.append(p if p is not None else (1.0 + g) / (1.0 + len(row)))
    return np.array(out)
