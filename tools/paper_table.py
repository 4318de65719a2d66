"""Prints a Markdown table of our Multiply-Adds (tf and plain conventions) beside the paper's:
    python tools/paper_table.py tests/tools/deeplabv3plus_tables.csv
"""

import sys

from deeplab.tools.paper import model_for, read_rows, row_key, row_madds


def main(path: str) -> None:
    print("| table | backbone | train OS | eval OS | decoder | MS | flip | sep | params | paper | tf | tf/paper "
          "| plain | plain/paper |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in read_rows(path):
        if row["pretraining"] != "imagenet":
            continue
        paper = float(row["madds_billion"])
        tf, plain = row_madds(row, "tf") / 1e9, row_madds(row, "plain") / 1e9
        params = sum(p.numel() for p in model_for(*row_key(row)).parameters()) / 1e6
        print(f"| {row['source']} | {row['backbone']} | {row['train_os']} | {row['eval_os']} | {row['decoder']} | "
              f"{row['multi_scale']} | {row['flip']} | {row['separable']} | {params:.2f} M | {paper:.2f}B | "
              f"{tf:.2f}B | {tf / paper:.4f} | {plain:.2f}B | {plain / paper:.4f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
