"""How busy the machine is while examples/benchmark.py runs, and the rule that calls a run loaded.

A ratio to PyTorch taken on a machine that other work is using says little: the two libraries
lose different shares of their speed to it (threads that wait for a core, caches another
process evicts). So the benchmark measures the machine itself, several times during the run,
with the plainest yardstick there is: numpy's float32 1024x1024 matrix product (the GEMM), in
GFLOP/s, best of a few. It also reads the 1-minute load average before it starts.

The run is **loaded** when any of these holds:

- a GEMM sample fell below ``DIP`` (80%) of the best sample of the same run: something else
  took the cores for a while;
- the 1-minute load average before the benchmark began was above ``MAX_START_LOAD`` (0.5):
  something else was running during the last minute;
- ``idle_gflops`` is given (the GEMM rate this machine reaches when idle) and the best sample
  of the run fell below ``DIP`` of it: the whole run was slowed evenly, which the first rule
  cannot see.

On a loaded run the benchmark still prints every number, but judges no target.

Each sample also times a plain copy of a 32 MiB array, in GB/s (read plus write). It is reported,
not part of the rule: on the shared machine of these notes the memory bandwidth swung by a third
within a minute while the GEMM held within 5% (measured), and a run whose every time, torch's
included, was 25-40% slower than an earlier one passed the GEMM rule. A copy that varied by more
than ``DIP`` is printed as a warning: the memory-bound rows (pooling, BatchNorm, the activations,
depthwise) of such a run are uncertain by about as much.
"""

from __future__ import annotations

import os
import time

import numpy as np

GEMM_SIZE = 1024
COPY_SIZE = 2**23  # float32 numbers of the copy probe: 32 MiB, more than the caches hold
DIP = 0.8  # a sample below this fraction of the best: the cores were busy elsewhere
MAX_START_LOAD = 0.5  # the 1-minute load average above which the machine was not idle before the run


def load_average() -> float | None:
    """The 1-minute load average (None where the system has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not a Unix
        return None


def gemm_gflops(a: np.ndarray, b: np.ndarray, repeat: int = 3) -> float:
    """The best rate, in GFLOP/s, of ``repeat`` products ``a @ b`` after one untimed one."""
    out = a @ b
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * a.shape[0] * a.shape[1] * b.shape[1] / best / 1e9


def copy_gbps(src: np.ndarray, dst: np.ndarray, repeat: int = 3) -> float:
    """The best rate, in GB/s (bytes read plus bytes written), of ``repeat`` copies of ``src`` into ``dst``."""
    np.copyto(dst, src)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2.0 * src.nbytes / best / 1e9


class LoadMonitor:
    """GEMM samples and load averages taken at named points of a run.

    Parameters
    ----------
    idle_gflops : float, optional
        The GEMM rate this machine reaches when idle, if known (``--idle-gflops``).
    repeat : int
        Timed products per sample (the best counts).
    """

    def __init__(self, idle_gflops: float | None = None, repeat: int = 3) -> None:
        self.idle_gflops, self.repeat = idle_gflops, repeat
        self.load_before = load_average()  # read before the benchmark has done any work
        rng = np.random.default_rng(0)
        self._a = rng.standard_normal((GEMM_SIZE, GEMM_SIZE)).astype(np.float32)
        self._b = rng.standard_normal((GEMM_SIZE, GEMM_SIZE)).astype(np.float32)
        self._src, self._dst = np.ones(COPY_SIZE, np.float32), np.empty(COPY_SIZE, np.float32)
        self.samples: list[dict] = []

    def sample(self, label: str) -> dict:
        """Measure the GEMM rate now; ``label`` says where in the run."""
        # A moment's rest first, so that the worker threads of the section that just ended
        # (torch's and BLAS's spin for a while after their last task) have gone to sleep.
        time.sleep(0.05)
        if not self.samples:  # the process's first products start BLAS's threads and page in its memory
            gemm_gflops(self._a, self._b, self.repeat)
        point = {
            "label": label,
            "gflops": gemm_gflops(self._a, self._b, self.repeat),
            "copy_gbps": copy_gbps(self._src, self._dst, self.repeat),
            "load_1min": load_average(),
        }
        self.samples.append(point)
        return point

    def verdict(self) -> dict:
        """:func:`judge_load` on the samples so far."""
        return judge_load(self.samples, self.load_before, self.idle_gflops)


def judge_load(samples: list[dict], load_before: float | None, idle_gflops: float | None = None) -> dict:
    """Whether a run was loaded, and why, from its GEMM samples and the load average before it.

    Parameters
    ----------
    samples : list of dict
        Each with ``label`` and ``gflops`` (as :meth:`LoadMonitor.sample` makes them), in order.
    load_before : float or None
        The 1-minute load average before the run began (None: unknown, not held against it).
    idle_gflops : float, optional
        The machine's GEMM rate when idle.

    Returns
    -------
    dict
        ``loaded`` (bool), ``reasons`` (a sentence per rule that fired), ``best_gflops``,
        ``latest_gflops``, ``worst_gflops``, ``worst_at`` (the worst sample's label),
        ``load_before``, ``idle_gflops`` and the ``samples``; ``copy_best_gbps`` and
        ``copy_worst`` (GB/s and label) from the samples' copies, None without any.

    Examples
    --------
    >>> steady = [{"label": "start", "gflops": 280.0}, {"label": "end", "gflops": 270.0}]
    >>> judge_load(steady, load_before=0.1)["loaded"]
    False
    >>> dipped = steady + [{"label": "after pass 3", "gflops": 150.0}]
    >>> judge_load(dipped, load_before=0.1)["reasons"]
    ['the GEMM fell to 150.0 GFLOP/s after pass 3, 54% of the best sample (280.0)']
    """
    if not samples:
        raise ValueError("judge_load: no GEMM samples; take at least one with LoadMonitor.sample")
    rates = [s["gflops"] for s in samples]
    best, worst_i = max(rates), min(range(len(rates)), key=rates.__getitem__)
    reasons = []
    if rates[worst_i] < DIP * best:
        reasons.append(
            f"the GEMM fell to {rates[worst_i]:.1f} GFLOP/s {samples[worst_i]['label']}, "
            f"{rates[worst_i] / best:.0%} of the best sample ({best:.1f})"
        )
    if load_before is not None and load_before > MAX_START_LOAD:
        reasons.append(
            f"the 1-minute load average was {load_before:.2f} before the run began (idle is at most {MAX_START_LOAD})"
        )
    if idle_gflops is not None and best < DIP * idle_gflops:
        reasons.append(
            f"the best GEMM sample ({best:.1f} GFLOP/s) is {best / idle_gflops:.0%} of this "
            f"machine's idle rate ({idle_gflops:.1f})"
        )
    copies = [(s["copy_gbps"], s["label"]) for s in samples if s.get("copy_gbps")]
    return {
        "copy_best_gbps": max(copies)[0] if copies else None,
        "copy_worst": min(copies) if copies else None,  # (GB/s, label)
        "loaded": bool(reasons),
        "reasons": reasons,
        "best_gflops": best,
        "latest_gflops": rates[-1],
        "worst_gflops": rates[worst_i],
        "worst_at": samples[worst_i]["label"],
        "load_before": load_before,
        "idle_gflops": idle_gflops,
        "samples": list(samples),
    }


def format_load(verdict: dict) -> str:
    """The verdict as the lines the benchmark prints at its end."""
    load = "unknown" if verdict["load_before"] is None else f"{verdict['load_before']:.2f}"
    lines = [
        f"machine load: {'LOADED' if verdict['loaded'] else 'idle'}; GEMM {GEMM_SIZE}x{GEMM_SIZE} float32 "
        f"over {len(verdict['samples'])} samples: best {verdict['best_gflops']:.1f}, latest "
        f"{verdict['latest_gflops']:.1f}, worst {verdict['worst_gflops']:.1f} GFLOP/s "
        f"({verdict['worst_at']}); 1-min load average before the run {load}"
        + ("" if verdict["idle_gflops"] is None else f"; idle GEMM given: {verdict['idle_gflops']:.1f}")
    ]
    lines += [f"  loaded because {reason}" for reason in verdict["reasons"]]
    if verdict.get("copy_worst"):
        (worst, at), best = verdict["copy_worst"], verdict["copy_best_gbps"]
        lines.append(f"memory: a {COPY_SIZE * 4 // 2**20} MiB copy, best {best:.1f}, worst {worst:.1f} GB/s ({at})")
        if worst < DIP * best:
            lines.append(
                f"  the memory bandwidth varied ({worst / best:.0%} of its best; not part of the rule above): "
                "the memory-bound rows (pooling, BatchNorm, activations, depthwise) are uncertain by about as much"
            )
    return "\n".join(lines)
