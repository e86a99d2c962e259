"""Long recordings in overlapping windows: what a window covers, and the
crossfade that joins the windows' outputs without a seam.

Memory is bounded by the window, not by the recording: a window is read,
enhanced, crossfaded with the previous one's tail and written before the
next is read.
"""

import math

import torch


def window_starts(total, window, overlap):
    """Start of every window of ``window`` samples overlapping by
    ``overlap`` that covers ``total`` samples; the last window ends at
    ``total`` and is longer than ``overlap``, so every join has a full
    crossfade.  ``overlap`` is at most half the window, so that a window's
    crossfaded head and tail never meet.

    Example
    -------
    >>> window_starts(10, 4, 1)
    [0, 3, 6]
    >>> window_starts(3, 4, 1)
    [0]
    """
    if not 0 <= 2 * overlap <= window:
        raise ValueError(f"overlap {overlap} must be in [0, window {window}"
                         " / 2]")
    hop, starts = window - overlap, [0]
    while starts[-1] + window < total:
        starts.append(starts[-1] + hop)
    return starts


def fade_in(n):
    """Raised-sine fade-in of ``n`` samples; with its mirror image (the
    fade-out ``1 - fade_in``) it sums to one at every sample, so that two
    identical signals crossfade into themselves.

    Example
    -------
    >>> w = fade_in(4)
    >>> torch.allclose(w + w.flip(0), torch.ones(4))
    True
    """
    t = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    return torch.sin(0.5 * math.pi * t) ** 2


class OverlapAdd:
    """Joins the outputs of consecutive overlapping windows.

    ``push(chunk)`` takes the output of the next window (``[..., n]``,
    overlapping the previous one by ``overlap`` samples) and returns the
    samples that are final: everything but the tail that the next window
    will crossfade into.  The last window's ``push(chunk, last=True)``
    returns everything left.

    Example
    -------
    >>> signal = torch.arange(10.0)
    >>> ola = OverlapAdd(overlap=1)
    >>> parts = [ola.push(signal[s:s + 4], last=s == 6)
    ...          for s in window_starts(10, 4, 1)]
    >>> torch.allclose(torch.cat(parts, -1), signal)
    True
    """

    def __init__(self, overlap):
        self.overlap = overlap
        self.tail = None
        self._fade = fade_in(overlap)

    def push(self, chunk, last=False):
        n = self.overlap
        if self.tail is not None and n:
            head = self.tail + chunk[..., :n] * self._fade
            chunk = torch.cat([head, chunk[..., n:]], -1)
        if last or not n:
            self.tail = None
            return chunk
        self.tail = chunk[..., -n:] * (1 - self._fade)
        return chunk[..., :-n]
