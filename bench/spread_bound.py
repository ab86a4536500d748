#!/usr/bin/env python3
"""How evenly shards fixed before a run can end, given the tests' own noise.

Reads the JUnit reports of R runs of one suite (each run with one test at a
time, so a test's time is its own) and, for each N, groups the tests into N
shards by their mean time over all R runs (longest first onto the least
loaded shard, then moves and swaps between the longest and the shortest
shard while they lower the longest): a grouping made with more than any
learning has (every test's mean, from the very runs it is judged on) and
finer than a runner allows (any test anywhere, no start-up, no file kept
together). Each run's spread is then its shards' sums, longest over mean.
"Held out" groups by the other runs' means and judges on the one left out.

    bench/spread_bound.py "2 4 8" junit-1.xml junit-2.xml ...

Prints a Markdown table (bench/spread_bound.sh writes the reports).
"""

import statistics
import sys
import xml.etree.ElementTree as ET


def read(path):
    """{(classname, name): seconds} of one report."""
    return {
        (case.get("classname"), case.get("name")): float(case.get("time"))
        for case in ET.parse(path).iter("testcase")
    }


def grouped(n, keys, weight):
    """N lists of keys whose weights' sums are as even as this finds."""
    shards = [[0.0, []] for _ in range(n)]
    for key in sorted(keys, key=lambda k: (-weight[k], k)):
        least = min(shards, key=lambda s: s[0])
        least[0] += weight[key]
        least[1].append(key)
    while True:
        shards.sort(key=lambda s: -s[0])
        high, low = shards[0], shards[-1]
        moves = [(a, None, weight[a]) for a in high[1]]
        moves += [(a, b, weight[a] - weight[b]) for a in high[1] for b in low[1]]
        gain = [(d, a, b) for a, b, d in moves if 0 < d and low[0] + d < high[0] - 1e-9]
        if not gain:
            return [s[1] for s in shards]
        d, a, b = min(gain, key=lambda g: abs(high[0] - low[0] - 2 * g[0]))
        high[1].remove(a)
        low[1].append(a)
        if b is not None:
            low[1].remove(b)
            high[1].append(b)
        high[0] -= d
        low[0] += d


def spread(groups, times):
    sums = [sum(times[k] for k in g) for g in groups]
    return max(sums) / statistics.mean(sums)


def main():
    counts = [int(n) for n in sys.argv[1].split()]
    runs = [read(p) for p in sys.argv[2:]]
    keys = sorted(set.intersection(*(set(r) for r in runs)))
    mean = {k: statistics.mean(r[k] for r in runs) for k in keys}
    print(f"{len(runs)} runs of {len(keys)} tests, {sum(mean.values()):.1f} s of tests a run "
          f"(runs from {min(sum(r.values()) for r in runs):.1f} to "
          f"{max(sum(r.values()) for r in runs):.1f} s)\n")
    print("| shards | mean shard | each run's spread | median | held out, median |")
    print("|---:|---:|---|---:|---:|")
    for n in counts:
        groups = grouped(n, keys, mean)
        each = [spread(groups, r) for r in runs]
        held = []
        for i, run in enumerate(runs):
            others = [r for j, r in enumerate(runs) if j != i]
            learnt = {k: statistics.mean(r[k] for r in others) for k in keys}
            held.append(spread(grouped(n, keys, learnt), run))
        print(f"| {n} | {sum(mean.values()) / n:.2f} s | "
              f"{' / '.join(f'{s:.2f}' for s in each)} | **{statistics.median(each):.2f}** | "
              f"{statistics.median(held):.2f} |")


if __name__ == "__main__":
    main()
