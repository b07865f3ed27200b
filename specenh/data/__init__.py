"""Kaldi data dirs, NeMo manifests, audio loading and corpus preparers."""
from specenh.data.kaldi import DataDir, DataDirError, load_data_dir, read_kv, save_data_dir, write_kv

__all__ = ["DataDir", "DataDirError", "load_data_dir", "save_data_dir", "read_kv", "write_kv"]
