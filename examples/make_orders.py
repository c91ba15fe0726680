"""Write a CSV of synthetic orders for the demo and the benchmarks."""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

COUNTRIES = ["DE", "FR", "US", "JP", "BR", "IN", "GB", "ES"]


def write_orders(path: Path, rows: int, seed: int = 7) -> Path:
    """Write ``rows`` orders (8 columns) to ``path``; deterministic for a given seed."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "customer", "country", "quantity", "unit_price", "active",
                      "score", "created_at"])
        for i in range(rows):
            out.writerow([
                i,
                f"c{rng.randrange(10_000):05d}",
                rng.choice(COUNTRIES),
                rng.randrange(-1, 50),
                round(rng.uniform(1, 200), 2),
                "true" if rng.random() < 0.7 else "false",
                round(rng.random(), 4),
                f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
            ])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("examples/data/orders.csv"))
    args = parser.parse_args()
    write_orders(args.out, args.rows)
    print(f"wrote {args.rows} orders to {args.out}")


if __name__ == "__main__":
    main()
