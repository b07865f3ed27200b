#!/usr/bin/env python3
"""Speed benchmarks side by side in one process; prints a Markdown table and writes JSON.

    tools/venv/bin/python benchmarks/run.py [--quick] [--device cuda] [--sections features ...]
"""
import sys

from specenh.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
