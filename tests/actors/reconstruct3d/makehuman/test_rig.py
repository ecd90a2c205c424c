"""The skeleton and skin weights move the head the way a rig should (linear blend skinning here)."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation


def _skinned(mesh, rotations: dict[str, np.ndarray]) -> np.ndarray:
    """Linear blend skinning of the rest mesh with local joint rotations (rest pose: no rotation)."""
    skin = mesh.skin
    world = []
    for index, name in enumerate(skin.joint_names):
        local = np.eye(4)
        local[:3, :3] = rotations.get(name, np.eye(3))
        parent = skin.parents[index]
        local[:3, 3] = skin.bind_positions[index] - (skin.bind_positions[parent] if parent >= 0 else 0.0)
        world.append(world[parent] @ local if parent >= 0 else local)
    inverse_bind = [np.block([[np.eye(3), -p[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]]) for p in skin.bind_positions]
    matrices = np.stack([w @ b for w, b in zip(world, inverse_bind)])
    blended = np.einsum("vk,vkij->vij", skin.weights, matrices[skin.joints])
    return np.einsum("vij,vj->vi", blended, np.c_[mesh.vertices, np.ones(len(mesh.vertices))])[:, :3]


@pytest.fixture(scope="module")
def head(package_heads):
    return package_heads["grace_hopper"]


def test_rest_pose_is_the_mesh(head):
    np.testing.assert_allclose(_skinned(head, {}), head.vertices, atol=1e-6)


def test_jaw_opens_the_mouth_and_leaves_the_skull(head, makehuman_engine):
    opened = _skinned(head, {"jaw": Rotation.from_euler("x", 15, degrees=True).as_matrix()})
    moved = np.linalg.norm(opened - head.vertices, axis=1)
    landmarks = makehuman_engine.model.landmarks
    chin_before, chin_after = landmarks(head.vertices)[152], landmarks(opened)[152]
    assert chin_before[1] - chin_after[1] > 0.008  # the chin drops by more than 8 mm
    assert moved[np.argmax(head.vertices[:, 1])] < 1e-6  # the crown stays
    assert np.linalg.norm(landmarks(opened)[13] - landmarks(opened)[14]) > 0.01  # lips apart


def test_eyes_turn_about_their_centres(head):
    names = list(head.skin.joint_names)
    turned = _skinned(head, {"eye_l": Rotation.from_euler("y", 20, degrees=True).as_matrix()})
    part = np.zeros(len(head.vertices), dtype=int)
    for index, p in enumerate(head.parts):
        part[np.unique(head.faces[p.faces])] = index
    left_ball = (part == 1) & (head.vertices[:, 0] > 0)
    centre = head.skin.bind_positions[names.index("eye_l")]
    radius_before = np.linalg.norm(head.vertices[left_ball] - centre, axis=1)
    radius_after = np.linalg.norm(turned[left_ball] - centre, axis=1)
    np.testing.assert_allclose(radius_after, radius_before, atol=1e-6)  # a rotation about the eye's centre
    assert np.linalg.norm(turned[left_ball] - head.vertices[left_ball], axis=1).max() > 0.003
    skin_moved = np.linalg.norm(turned - head.vertices, axis=1)[part == 0]
    near = np.linalg.norm(head.vertices[part == 0] - centre, axis=1) < 0.025
    assert skin_moved[~near].max() < 1e-6  # the face stays
    ball_moved = np.linalg.norm(turned[left_ball] - head.vertices[left_ball], axis=1).max()
    assert skin_moved[near].max() < 0.15 * ball_moved  # the lids follow the gaze a little (MakeHuman's weights)


def test_neck_turns_the_head_not_the_shoulders(head):
    turned = _skinned(head, {"neck_01": Rotation.from_euler("y", 30, degrees=True).as_matrix()})
    moved = np.linalg.norm(turned - head.vertices, axis=1)
    nose = np.argmax(head.vertices[:, 2] - 10 * np.abs(head.vertices[:, 0]))
    assert moved[nose] > 0.03
    shoulders = head.vertices[:, 1] < head.vertices[:, 1].min() + 0.02
    assert moved[shoulders].max() < 0.01
