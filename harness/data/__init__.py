"""Data shipped with harness: BPE ranks, prices, context windows (see README.md)."""
