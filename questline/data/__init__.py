from questline.data.io import read_jsonl, write_jsonl
from questline.data.taskset import TaskSet, split_budget, split_counts

__all__ = ["TaskSet", "read_jsonl", "split_budget", "split_counts", "write_jsonl"]
