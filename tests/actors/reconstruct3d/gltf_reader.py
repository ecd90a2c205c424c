"""Read a GLB back for tests with pygltflib, decoding accessors (sparse ones too) from the spec alone.

Shares no code with the exporter: layouts, component types and the sparse substitution follow the
glTF 2.0 specification, so a writer bug cannot be mirrored by the reader.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pygltflib
from PIL import Image

DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


@dataclass
class Glb:
    gltf: pygltflib.GLTF2
    blob: bytes

    @classmethod
    def load(cls, path) -> "Glb":
        gltf = pygltflib.GLTF2().load_binary(str(path))
        return cls(gltf, gltf.binary_blob())

    def accessor(self, index: int) -> np.ndarray:
        """(count, width) array of an accessor: its bufferView (or zeros), then sparse substitution."""
        accessor = self.gltf.accessors[index]
        width = WIDTHS[accessor.type]
        dtype = np.dtype(DTYPES[accessor.componentType])
        if accessor.bufferView is None:
            values = np.zeros((accessor.count, width), dtype)
        else:
            view = self.gltf.bufferViews[accessor.bufferView]
            start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
            element = width * dtype.itemsize
            stride = view.byteStride or element
            raw = np.frombuffer(self.blob, np.uint8, (accessor.count - 1) * stride + element, start)
            rows = np.lib.stride_tricks.as_strided(raw, shape=(accessor.count, element), strides=(stride, 1))
            values = np.ascontiguousarray(rows).view(dtype).reshape(accessor.count, width)
        if accessor.sparse is not None:
            sparse = accessor.sparse
            index_view = self.gltf.bufferViews[sparse.indices.bufferView]
            value_view = self.gltf.bufferViews[sparse.values.bufferView]
            indices = np.frombuffer(self.blob, DTYPES[sparse.indices.componentType], sparse.count,
                                    (index_view.byteOffset or 0) + (sparse.indices.byteOffset or 0))
            substitutes = np.frombuffer(self.blob, dtype, sparse.count * width,
                                        (value_view.byteOffset or 0) + (sparse.values.byteOffset or 0)).reshape(-1, width)
            values = values.copy()
            values[indices.astype(np.int64)] = substitutes
        if accessor.normalized:
            values = values.astype(np.float32) / np.iinfo(dtype).max
        return values

    def image(self, index: int) -> np.ndarray:
        view = self.gltf.bufferViews[self.gltf.images[index].bufferView]
        data = self.blob[view.byteOffset or 0:(view.byteOffset or 0) + view.byteLength]
        return np.asarray(Image.open(io.BytesIO(data)))

    def node_world_matrices(self) -> dict[int, np.ndarray]:
        """World matrix (4x4, row-major maths) of every node in the default scene."""
        world: dict[int, np.ndarray] = {}

        def visit(node_index: int, parent: np.ndarray) -> None:
            node = self.gltf.nodes[node_index]
            local = np.eye(4)
            if node.matrix is not None:
                local = np.array(node.matrix, dtype=np.float64).reshape(4, 4).T  # stored column-major
            else:
                if node.rotation is not None:
                    x, y, z, w = node.rotation
                    local[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
                if node.scale is not None:
                    local[:3, :3] = local[:3, :3] @ np.diag(node.scale)
                if node.translation is not None:
                    local[:3, 3] = node.translation
            world[node_index] = parent @ local
            for child in node.children or []:
                visit(child, world[node_index])

        for root in self.gltf.scenes[self.gltf.scene or 0].nodes:
            visit(root, np.eye(4))
        return world
