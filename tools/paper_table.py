"""Every ImageNet row of the paper's Tables 3 and 5 with our Multiply-Adds (tf and plain conventions)
and parameters, as a Markdown table; --write FILE puts it between the paper_table markers of FILE:
    python tools/paper_table.py tests/tools/deeplabv3plus_tables.csv --write docs/complexity.md
"""

import argparse
from pathlib import Path

from deeplab.tools.paper import TABLE_HEADER, read_rows, replace_table, table_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="the paper's rows (tests/tools/deeplabv3plus_tables.csv)")
    parser.add_argument("--write", metavar="FILE", help="a Markdown file with the paper_table markers")
    args = parser.parse_args()
    lines = list(TABLE_HEADER)
    if not args.write:
        print("\n".join(TABLE_HEADER), flush=True)
    for row in read_rows(args.csv):
        if row["pretraining"] == "imagenet":
            lines.append(table_row(row))
            if not args.write:
                print(lines[-1], flush=True)
    if args.write:
        path = Path(args.write)
        path.write_text(replace_table(path.read_text(), lines))
        print(f"wrote {len(lines) - 2} rows into {path}")


if __name__ == "__main__":
    main()
