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
cpu_node = cluster.add_node(num_cpus=2)
gpu_node = cluster.add_node(num_cpus=2, num_gpus=1)
ray.init(address=cluster.address)
cluster.wait_for_nodes()

args = generate.build_parser().parse_args(["--input", ".", "--output", "/tmp/x", "--engine", "diffusers"])
request = generate.request_from_args(args)

@ray.remote
class Probe:
    def node(self):
        return ray.get_runtime_context().get_node_id(), ray.get_gpu_ids()

diffusion = Probe.options(**generate.avatar_resources(request, args)).remote()
alignment = [Probe.options(num_cpus=args.cpus_per_actor).remote() for _ in range(2)]
print(json.dumps({
    "cpu_node": cpu_node.node_id, "gpu_node": gpu_node.node_id,
    "diffusion": ray.get(diffusion.node.remote()),
    "alignment": [ray.get(a.node.remote()) for a in alignment],
}))
ray.shutdown()
cluster.shutdown()
"""


@pytest.mark.slow
def test_actors_land_on_the_right_node_type():
    done = subprocess.run([sys.executable, "-c", PLACEMENT_SCRIPT], cwd=REPO, env=job_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    placement = json.loads(done.stdout.strip().splitlines()[-1])
    node, gpus = placement["diffusion"]
    assert node == placement["gpu_node"] and gpus == [0]
    for node, gpus in placement["alignment"]:
        assert node == placement["cpu_node"] and gpus == []
