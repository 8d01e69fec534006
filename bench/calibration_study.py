#!/usr/bin/env python3
"""Summarises the rows of `calibration_study` (the Rust example) per variant.

Usage: calibration_study.py ROWS.tsv [ROWS.tsv ...]

Each row is one target's Nov-Dec coverage on one simulated dataset under one
calibration variant (blocks x band rule). Per variant, over every dataset and
target: mean coverage, mean |coverage - 0.8| with a 95% paired bootstrap
interval (over datasets) of its difference to the previous calibration (select3x61, median-interp-kind), the
spread of coverage, the mean tails, the share of target-runs with a tail
over 18%, the worst tail, the shares within 0.72-0.88 and 0.65-0.92 (with
the bootstrap interval of the first's difference), the share of datasets
with all 13 targets within 0.72-0.88, and the geometric mean of the interval
score over the previous calibration's (with its interval). Last, the same figures
for an exactly calibrated 80% interval on as many days (binomial draws):
the floor no calibration can go under. With each ROWS.tsv, its
ROWS.widths.tsv (the calibration residuals' spread by kind of day, inside
the training range) gives, per family of targets, how much wider special
days' residuals are than ordinary days'.
"""
import collections
import csv
import math
import random
import sys

# The calibration before the study, the reference of every difference.
BEFORE = ("select3x61", "median-interp-kind")
BOOTSTRAPS = 400


def load(paths):
    by_variant = collections.defaultdict(lambda: collections.defaultdict(list))
    for path in paths:
        with open(path) as f:
            for r in csv.DictReader(f, delimiter="\t"):
                by_variant[(r["blocks"], r["bands"])][r["dataset"]].append(
                    (float(r["coverage"]), float(r["below"]), float(r["above"]), float(r["score"]))
                )
    return by_variant


def stats(per_dataset, datasets, reference):
    runs = [x for d in datasets for x in per_dataset[d]]
    n = len(runs)
    coverage = [x[0] for x in runs]
    mean = sum(coverage) / n
    log_ratios = [
        math.log(x[3] / r[3]) for d in datasets for x, r in zip(per_dataset[d], reference[d])
    ]
    return {
        "mean": mean,
        "mad": sum(abs(c - 0.8) for c in coverage) / n,
        "sd": math.sqrt(sum((c - mean) ** 2 for c in coverage) / n),
        "below": sum(x[1] for x in runs) / n,
        "above": sum(x[2] for x in runs) / n,
        "tail18": sum(max(x[1], x[2]) > 0.18 for x in runs) / n,
        "worst": max(max(x[1], x[2]) for x in runs),
        "in72": sum(0.72 <= c <= 0.88 for c in coverage) / n,
        "in65": sum(0.65 <= c <= 0.92 for c in coverage) / n,
        "all72": sum(all(0.72 <= x[0] <= 0.88 for x in per_dataset[d]) for d in datasets)
        / len(datasets),
        "score": math.exp(sum(log_ratios) / n),
    }


def widths(paths):
    """Median (and 10th..90th percentile) over datasets and targets of the
    special days' MAD over the ordinary days'."""
    families = collections.defaultdict(list)
    for path in paths:
        with open(path.removesuffix(".tsv") + ".widths.tsv") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                t = int(r["target"])
                family = "records" if t < 4 else "arrivals" if t < 8 else "runtimes"
                families[family].append(
                    (float(r["mad_special"]) / float(r["mad_ordinary"]), int(r["n_special"]))
                )
    for family, values in families.items():
        ratios = sorted(v[0] for v in values)
        n = len(ratios)
        print(f"calibration residuals, {family}: MAD special / ordinary days "
              f"{ratios[n // 2]:.2f} ({ratios[n // 10]:.2f}..{ratios[9 * n // 10]:.2f}), "
              f"{sum(v[1] for v in values) / n:.0f} special days a target")


def exact_calibration(days, draws=20000):
    runs = []
    for _ in range(draws):
        run = []
        for n in days:
            u = [random.random() for _ in range(n)]
            below = sum(x < 0.1 for x in u) / n
            above = sum(x > 0.9 for x in u) / n
            run.append((1 - below - above, below, above))
        runs.append(run)
    flat = [x for run in runs for x in run]
    return (
        "exact calibration (binomial, same days): |c-.8| %.4f  sd %.3f  tail>18%% %.3f  "
        "in72-88 %.3f  in65-92 %.3f  all13-in72-88 %.3f"
        % (
            sum(abs(x[0] - 0.8) for x in flat) / len(flat),
            math.sqrt(sum((x[0] - 0.8) ** 2 for x in flat) / len(flat)),
            sum(max(x[1], x[2]) > 0.18 for x in flat) / len(flat),
            sum(0.72 <= x[0] <= 0.88 for x in flat) / len(flat),
            sum(0.65 <= x[0] <= 0.92 for x in flat) / len(flat),
            sum(all(0.72 <= x[0] <= 0.88 for x in run) for run in runs) / len(runs),
        )
    )


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    random.seed(1)
    by_variant = load(sys.argv[1:])
    before = by_variant[BEFORE]
    datasets = sorted(before)
    boots = [[random.choice(datasets) for _ in datasets] for _ in range(BOOTSTRAPS)]
    lo, hi = int(0.025 * BOOTSTRAPS), int(0.975 * BOOTSTRAPS) - 1
    print(f"{len(datasets)} datasets, {13 * len(datasets)} target-runs per variant; "
          f"[..] = 95% bootstrap interval of the difference to {'/'.join(BEFORE)}")
    print(f"{'blocks':<11} {'bands':<24} {'mean':>6} {'|c-.8|':>7} {'[diff]':>17} {'sd':>6} "
          f"{'<p10':>6} {'>p90':>6} {'tl>18%':>6} {'[diff]':>15} {'worst':>6} {'in72-88':>7} {'[diff]':>15} "
          f"{'in65-92':>7} {'all13':>6} {'score':>6} {'[diff]':>15}")
    for variant in sorted(by_variant):
        runs = by_variant[variant]
        s = stats(runs, datasets, before)
        pairs = [(stats(runs, b, before), stats(before, b, before)) for b in boots]

        def interval(key, fmt):
            d = sorted(x[key] - y[key] for x, y in pairs)
            return f"{d[lo]:{fmt}}..{d[hi]:{fmt}}"

        print(f"{variant[0]:<11} {variant[1]:<24} {s['mean']:6.3f} {s['mad']:7.4f} "
              f"{interval('mad', '+.4f'):>17} {s['sd']:6.3f} {s['below']:6.3f} {s['above']:6.3f} "
              f"{s['tail18']:6.3f} {interval('tail18', '+.3f'):>15} {s['worst']:6.3f} {s['in72']:7.3f} {interval('in72', '+.3f'):>15} "
              f"{s['in65']:7.3f} {s['all72']:6.3f} {s['score']:6.3f} {interval('score', '+.3f'):>15}")
    # The holdout's days with a value: 58 per runtime, 61 per record count,
    # 59 per arrival (as in metrics.json).
    print(exact_calibration([58] * 5 + [61] * 4 + [59] * 4))
    widths(sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
