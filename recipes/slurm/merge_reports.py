#!/usr/bin/env python3
"""Merge the per-shard ``--report`` files of a Slurm array into one report and a summary.

    python recipes/slurm/merge_reports.py reports/shard-*.jsonl --shards 8 -o reports/all.jsonl

Prints the summary (ok / skipped / failed, reports found and missing, ids seen twice) as JSON
on stdout; ``-o`` writes the merged report, one line per item sorted by id. Exit 0 when every
item is ok or skipped and all ``--shards`` reports are there, else 1 (resubmit the failed
array tasks with ``--skip-existing``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from avtool.engines import merge_reports
from avtool.errors import AvtoolError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="Per-shard JSONL reports.")
    parser.add_argument("--shards", type=int, help="The array size: reports expected.")
    parser.add_argument("-o", "--output", type=Path, help="Write the merged JSONL report here.")
    args = parser.parse_args(argv)
    try:
        merged = merge_reports(args.reports, shards=args.shards)
    except AvtoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    if args.output is not None:
        lines = "".join(json.dumps(row) + "\n" for row in merged["items"])
        tmp = args.output.with_name(args.output.name + ".tmp")
        tmp.write_text(lines, encoding="utf-8")
        tmp.replace(args.output)  # atomic: a half-written merge never looks complete
    print(json.dumps({k: v for k, v in merged.items() if k != "items"}, indent=2))
    return int(merged["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
