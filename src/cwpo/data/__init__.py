"""Preference data: one pair schema, loaders for every supported layout, splits and filters."""

from cwpo.data.load import HH_SUBSETS, LoadResult, hh_files, load_pairs
from cwpo.data.schema import (
    HUMAN_LABEL,
    LABELED,
    UNLABELED,
    read_pairs,
    to_labeled,
    to_unlabeled,
    write_pairs,
)
from cwpo.data.split import filter_by_length, split_pool

__all__ = [
    "HH_SUBSETS",
    "HUMAN_LABEL",
    "LABELED",
    "UNLABELED",
    "LoadResult",
    "filter_by_length",
    "hh_files",
    "load_pairs",
    "read_pairs",
    "split_pool",
    "to_labeled",
    "to_unlabeled",
    "write_pairs",
]
