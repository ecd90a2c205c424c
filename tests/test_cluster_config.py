"""cluster.yaml against Ray's own cluster-config schema, and placement of the jobs' actors by resources."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.jobs.helpers import REPO, job_env

CLUSTER_YAML = REPO / "cluster.yaml"


def test_cluster_yaml_passes_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(CLUSTER_YAML.read_text())
    validate_config(prepare_config(copy.deepcopy(config)))
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"].get("CPU") == 0, "the head runs drivers only"
    assert types["gpu_worker"]["resources"].get("GPU") == 1
    assert "GPU" not in types["cpu_worker"]["resources"]
    assert any("pip install" in command and "indian-avatar-ai" in command for command in config["setup_commands"])


def test_schema_rejects_a_broken_config():
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(CLUSTER_YAML.read_text())
    config["available_node_types"]["gpu_worker"]["resources"] = "one GPU"
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validate_config(prepare_config(config))


PLACEMENT_SCRIPT = r"""
import json, os, sys
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
import ray
from ray.cluster_utils import Cluster
from jobs import generate

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
cpu_node = cluster.add_node(num_cpus=2, resources={"cpu_node": 2})   # as cluster.yaml's cpu_worker
gpu_node = cluster.add_node(num_cpus=2, num_gpus=1)                  # as cluster.yaml's gpu_worker
ray.init(address=cluster.address)
cluster.wait_for_nodes()

@ray.remote
class Probe:
    def node(self):
        return ray.get_runtime_context().get_node_id(), ray.get_gpu_ids()

placement = {"cpu_node": cpu_node.node_id, "gpu_node": gpu_node.node_id}
for engine in ("diffusers", "offline"):
    args = generate.build_parser().parse_args(["--input", ".", "--output", "/tmp/x", "--engine", engine])
    request, config = generate.request_from_args(args), generate.config_from_args(args)
    plans = generate.stage_plans(args, request, config, args.catalog, aligning=True)
    cluster_resources = ray.cluster_resources()
    probes = {plan.name: [Probe.options(**plan.ray_args(cluster_resources)).remote() for _ in range(plan.actors)]
              for plan in plans}
    placement[engine] = {name: [ray.get(p.node.remote()) for p in actors] for name, actors in probes.items()}
    placement[engine + "_gpus_asked"] = sum(plan.actors * plan.num_gpus for plan in plans)
    for actors in probes.values():
        for actor in actors:
            ray.kill(actor)
print(json.dumps(placement))
ray.shutdown()
cluster.shutdown()
"""


@pytest.mark.slow
def test_stages_land_on_their_node_types():
    """diffusers: 2D actors on the GPU node, alignment and 3D on the CPU node; offline: nothing asks for a GPU."""
    done = subprocess.run([sys.executable, "-c", PLACEMENT_SCRIPT], capture_output=True, text=True, timeout=240,
                          cwd=REPO, env=job_env())
    assert done.returncode == 0, done.stderr[-3000:]
    placement = json.loads(done.stdout.strip().splitlines()[-1])
    diffusers = placement["diffusers"]
    assert set(diffusers) == {"alignment", "2D", "3D"}
    for node, gpus in diffusers["2D"]:
        assert node == placement["gpu_node"] and gpus == [0]
    for stage in ("alignment", "3D"):
        for node, gpus in diffusers[stage]:
            assert node == placement["cpu_node"] and gpus == [], stage
    assert placement["offline_gpus_asked"] == 0
    for stage, actors in placement["offline"].items():
        for node, gpus in actors:
            assert node == placement["cpu_node"] and gpus == [], stage
