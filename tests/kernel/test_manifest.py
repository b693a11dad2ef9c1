"""Manifests: every one records what besides the inputs decides the numbers."""

import sys

import numpy as np


def test_every_manifest_records_versions_threads_and_device(monkeypatch):
    import torch

    from idia.manifest import build_manifest
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    rt = build_manifest(0, {})["runtime"]
    assert rt["torch"] == torch.__version__ and rt["numpy"] == np.__version__ and rt["open_clip"]
    assert rt["torch_threads"] == torch.get_num_threads()
    assert rt["torch_interop_threads"] == torch.get_num_interop_threads()
    assert rt["thread_env"]["OMP_NUM_THREADS"] == "3"
    assert rt["python"] == sys.version.split()[0] and rt["platform"] and rt["device"]
