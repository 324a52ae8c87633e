"""The Ray runner on a real two-node local Ray cluster gives the local runner's results."""

from __future__ import annotations

import subprocess

import yaml
from cli_runs import XSTILTS, job_metrics

from xstilts.experiments.queue import Queue
from xstilts.experiments.rundir import RunDir


def test_a_grid_on_a_two_node_ray_cluster_equals_the_local_run(tiny_model, tiny_task_files, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setenv("RAY_DISABLE_USAGE_STATS", "1")
    from ray.cluster_utils import Cluster

    budget = {"batch_size": 8, "lr": 1e-3, "max_length": 32, "max_steps": 30}
    config = tmp_path / "grid.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "ray-grid",
                "model": tiny_model,
                "tasks_dir": str(tiny_task_files),
                "seeds": [1],
                "intermediate": {"settings": ["u-sametopic"], "train": budget},
                "targets": [{"task": "u-topic", "train": budget, "probe_reference": False}],
                "grid": {"intermediate.train.lr": [1e-3, 3e-4]},
                "resources": {"cpus": 1},
            }
        )
    )
    local = subprocess.run(
        [XSTILTS, "run", str(config), "--out", str(tmp_path / "local")],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert local.returncode == 0, local.stderr
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 100 * 2**20})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20)
        cluster.wait_for_nodes()
        remote = subprocess.run(
            [
                XSTILTS,
                "run",
                str(config),
                "--out",
                str(tmp_path / "ray"),
                "--runner",
                "ray",
                "--address",
                cluster.address,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        cluster.shutdown()
    assert remote.returncode == 0, remote.stderr
    expected = job_metrics(tmp_path / "local")
    assert len({k[0] for k in expected}) == 2 + 3  # 2 intermediate jobs (one per lr), 3 target jobs
    assert job_metrics(tmp_path / "ray") == expected
    log = Queue(RunDir(tmp_path / "ray")).log()
    assert sorted(e["event"] for e in log) == ["done"] * 5 + ["start"] * 5
    nodes = {e["detail"] for e in log if e["event"] == "start"}
    assert len(nodes) == 2 and all(n.startswith("ray node ") for n in nodes)  # both nodes took jobs
