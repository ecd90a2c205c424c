"""Runs inside Blender: import a rigged head GLB (and its OBJ), report what Blender built, render a frame.

    blender -b --factory-startup --python-exit-code 1 --python blender_check.py -- HEAD.glb HEAD.obj OUT_DIR

Writes OUT_DIR/blender_report.json (armature, bones, shape keys and their values, materials and their
images, vertex positions at rest, at the default expression and posed, in glTF axes) and
OUT_DIR/blender_render.png / blender_posed.png (Cycles on the CPU, view transform Standard so texture
colours show as stored). Poses: "head" turned 25° about the up axis, "jaw" 20° about the left-right
axis, jawOpen = 1, the same as tests/actors/reconstruct3d/rigged_mesh.skinned_positions gets.
"""
import json
import math
import sys
from pathlib import Path

import numpy

if not hasattr(numpy, "bool"):  # Blender 3.4's glTF importer still says numpy.bool (removed in numpy 1.24)
    numpy.bool = bool

import bpy  # noqa: E402
from mathutils import Matrix, Vector  # noqa: E402

GLTF_FROM_BLENDER = Matrix(((1, 0, 0), (0, 0, 1), (0, -1, 0)))  # Blender is Z-up, glTF Y-up
BLENDER_FROM_GLTF = GLTF_FROM_BLENDER.transposed()


def to_gltf(point) -> list:
    return list(GLTF_FROM_BLENDER @ Vector(point))


def evaluated_vertices(obj) -> list:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    points = [to_gltf(obj.matrix_world @ v.co) for v in mesh.vertices]
    evaluated.to_mesh_clear()
    return points


def material_report(material) -> dict:
    images = []
    if material.use_nodes:
        images = [[n.image.name, list(n.image.size)] for n in material.node_tree.nodes if n.type == "TEX_IMAGE" and n.image]
    return {"name": material.name, "images": images, "blend_method": material.blend_method,
            "backface_culling": material.use_backface_culling}


def rotation_about(axis_gltf, degrees: float) -> Matrix:
    return Matrix.Rotation(math.radians(degrees), 4, BLENDER_FROM_GLTF @ Vector(axis_gltf))


def pose(armature, rotations: dict) -> None:
    """Turn bones about their heads by glTF-axis rotations, parents first, in armature space."""
    bpy.context.view_layer.update()
    moved = {}
    for bone in armature.pose.bones:  # parents come before children
        parent_delta = moved.get(bone.parent.name, Matrix.Identity(4)) if bone.parent else Matrix.Identity(4)
        rest = bone.bone.matrix_local
        delta = parent_delta
        if bone.name in rotations:
            head = rest.to_translation()
            delta = parent_delta @ Matrix.Translation(head) @ rotation_about(*rotations[bone.name]) @ Matrix.Translation(-head)
        moved[bone.name] = delta
        bone.matrix = delta @ rest
        bpy.context.view_layer.update()


def render(path: Path, meshes) -> None:
    scene = bpy.context.scene
    points = [obj.matrix_world @ v.co for obj in meshes for v in obj.data.vertices]
    low = Vector([min(p[i] for p in points) for i in range(3)])
    high = Vector([max(p[i] for p in points) for i in range(3)])
    centre, height = (low + high) / 2, high.z - low.z
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.lens = 50
    camera.location = (centre.x, centre.y - 1.9 * height, centre.z + 0.05 * height)
    camera.rotation_euler = (math.radians(90), 0, 0)
    scene.collection.objects.link(camera)
    scene.camera = camera
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy = 3.0
    sun.rotation_euler = (math.radians(60), 0, math.radians(20))
    scene.collection.objects.link(sun)
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs[0].default_value = (0.35, 0.4, 0.5, 1)
    scene.world = world
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = 320
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def main() -> None:
    glb, obj_path, out = sys.argv[sys.argv.index("--") + 1:]
    out = Path(out)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=glb)
    report = {"blender": bpy.app.version_string, "objects": {o.name: o.type for o in bpy.data.objects}}
    armatures = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    report["armatures"] = [{
        "name": a.name,
        "bones": [b.name for b in a.data.bones],
        "parents": {b.name: (b.parent.name if b.parent else None) for b in a.data.bones},
        "heads": {b.name: to_gltf(a.matrix_world @ b.head_local) for b in a.data.bones},
    } for a in armatures]
    report["meshes"] = []
    for obj in meshes:
        keys = obj.data.shape_keys.key_blocks if obj.data.shape_keys else []
        report["meshes"].append({
            "name": obj.name,
            "vertices": len(obj.data.vertices),
            "shape_keys": [k.name for k in keys],
            "shape_key_values": [k.value for k in keys],
            "vertex_groups": [g.name for g in obj.vertex_groups],
            "armature_modifiers": [m.object.name for m in obj.modifiers if m.type == "ARMATURE" and m.object],
            "materials": [material_report(m) for m in obj.data.materials],
            "rest": [to_gltf(obj.matrix_world @ v.co) for v in obj.data.vertices],
            "default": evaluated_vertices(obj),
        })
    render(out / "blender_render.png", meshes)

    for obj in meshes:
        if obj.data.shape_keys and "jawOpen" in obj.data.shape_keys.key_blocks:
            obj.data.shape_keys.key_blocks["jawOpen"].value = 1.0
    for armature in armatures:
        pose(armature, {"head": ((0, 1, 0), 25.0), "jaw": ((1, 0, 0), 20.0)})
    for entry, obj in zip(report["meshes"], meshes):
        entry["posed"] = evaluated_vertices(obj)
    bpy.context.scene.render.filepath = str(out / "blender_posed.png")
    bpy.ops.render.render(write_still=True)

    # The static OBJ in a fresh scene: one material per part, with its images.
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.obj_import(filepath=obj_path)
    report["obj"] = [{"name": o.name, "vertices": len(o.data.vertices), "polygons": len(o.data.polygons),
                      "materials": [material_report(m) for m in o.data.materials]}
                     for o in bpy.data.objects if o.type == "MESH"]
    (out / "blender_report.json").write_text(json.dumps(report))


main()
