"""Offscreen OpenGL view renderer (moderngl over EGL): Mesa's llvmpipe on a CPU machine, the GPU's driver on a GPU one.

Why GL: a real rasteriser gives depth-tested occlusion between parts (eyes behind eyelids, teeth behind
lips), per-material culling and blending, mipmapped texture sampling and multisample anti-aliasing,
and it is an order of magnitude faster than the numpy reference on one CPU core (`bench.reconstruct`).

One context per process, created on the first render and reused for every head after it. A pickled
renderer (how a Ray actor receives one) carries no context and starts its own in the new process. A
context does not survive fork (llvmpipe's rasteriser threads and GPU drivers are gone in the child, and
drawing there hangs): a renderer whose context was made by its parent refuses with a one-line error; the
"numba" backend has no such state and works in forked children. Per head: one vertex/index upload and one texture upload (with mipmaps), then each view is
a few draw calls into a multisampled framebuffer, resolved and read back. Objects made for a head are
released after its views (moderngl does not collect them on its own).

Draw order per view: OPAQUE and MASK parts with depth test and write (MASK discards texels under the
cut-off), then BLEND parts without depth write, farthest part first and each part's triangles sorted
back to front. Single-sided materials cull back faces; double-sided ones light the back face with the
flipped normal.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .view_scene import (ALPHA_CUTOFF, AMBIENT, DIFFUSE, FRAME_FILL, HALFWAY, LIGHT, ViewScene, specular_terms,
                         srgb_encode, yaw_rotation)

DEPTH_MARGIN = 1.5  # depth range = ±1.5 framing radii: the morphed head may reach past the neutral framing sphere

VERTEX_SHADER = """
#version 330
uniform mat3 rotation;
uniform vec3 centre;
uniform float scale;
uniform float depth_scale;
in vec3 in_position;
in vec3 in_normal;
in vec2 in_uv;
out vec3 v_normal;
out vec2 v_uv;
void main() {
    vec3 camera = rotation * (in_position - centre);
    gl_Position = vec4(camera.xy * scale, -camera.z * depth_scale, 1.0);
    v_normal = rotation * in_normal;
    v_uv = in_uv;
}
"""

# Compiled per feature set (#define TEXTURED, ALPHA_MASK, DOUBLE_SIDED, SPECULAR): llvmpipe runs both sides of
# a uniform branch, so a feature a material lacks must not be in its shader at all. `tint` is the base-colour
# factor in sRGB (for a power-law transfer curve, encode(decode(t) * f) = t * encode(f)), so no per-pixel pow.
FRAGMENT_SHADER = """
uniform sampler2D image;
uniform vec3 tint;
uniform float opacity;
uniform float keep_alpha;
uniform float alpha_cutoff;
uniform vec3 light;
uniform vec3 halfway;
uniform float ambient;
uniform float diffuse;
uniform float specular;
uniform float shininess;
in vec3 v_normal;
in vec2 v_uv;
out vec4 colour;
void main() {
#ifdef TEXTURED
    vec4 texel = texture(image, v_uv);
#else
    vec4 texel = vec4(1.0);
#endif
    float alpha = texel.a * opacity;
#ifdef ALPHA_MASK
    if (alpha < alpha_cutoff) discard;
#endif
    vec3 n = normalize(v_normal);
#ifdef DOUBLE_SIDED
    if (!gl_FrontFacing) n = -n;
#endif
    float lambert = max(dot(n, light), 0.0);
    vec3 shaded = texel.rgb * tint * (ambient + diffuse * lambert);
#ifdef SPECULAR
    if (lambert > 0.0) shaded += specular * pow(max(dot(n, halfway), 0.0), shininess);
#endif
    colour = vec4(shaded, mix(1.0, alpha, keep_alpha));
}
"""


class GLUnavailableError(RuntimeError):
    """Offscreen OpenGL could not be started in this process (no libEGL, no driver, too old a GL)."""


@dataclass
class _Context:
    """What lives as long as the process's GL context: the context, its programs and framebuffers."""

    pid: int
    ctx: object  # moderngl.Context
    target: object  # framebuffer drawn into (multisampled when samples > 1)
    resolved: object | None  # single-sample framebuffer the multisampled one resolves into
    programs: dict = field(default_factory=dict)  # feature set -> program, compiled on first use


class GLViewRenderer:
    """Renders `ViewScene`s to (size, size, 3) uint8 views with OpenGL. The context starts on first use.

    samples: MSAA samples per pixel (1 = none). device_index: the EGL device (0 is the first GPU on a
    machine with an NVIDIA driver, llvmpipe on a machine with Mesa only).
    """

    def __init__(self, size: int, samples: int = 4, device_index: int = 0, background=(238, 238, 238)):
        self.size = size
        self.samples = samples
        self.device_index = device_index
        self.background = tuple(background)
        self._context: _Context | None = None

    # -- lifetime -------------------------------------------------------------------------------
    def start(self) -> str:
        """Create the context now (if not yet in this process); returns the GL renderer's name.
        Raises `GLUnavailableError` with what to install when offscreen GL cannot start."""
        with self._ready().ctx as ctx:
            return ctx.info["GL_RENDERER"]

    def close(self) -> None:
        """Release the context (only if this process made it: a forked child's copy is just dropped)."""
        context, self._context = self._context, None
        if context is not None and context.pid == os.getpid():
            context.ctx.release()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_context"] = None  # a GL context never crosses a process boundary
        return state

    def _ready(self) -> _Context:
        if self._context is not None and self._context.pid != os.getpid():
            raise GLUnavailableError(
                f"this GL renderer started its context in process {self._context.pid}, and a forked child cannot use "
                "that driver state (llvmpipe's threads and GPU drivers do not survive fork): create the renderer in "
                "the child, start workers with 'spawn' (Ray does), or use backend='numba'.")
        if self._context is None:
            self._context = self._create()
        return self._context

    def _create(self) -> _Context:
        try:
            import moderngl

            ctx = moderngl.create_standalone_context(backend="egl", require=330, device_index=self.device_index)
        except Exception as exc:  # glcontext raises plain Exceptions (no libEGL, no device, no config)
            raise GLUnavailableError(
                f"offscreen OpenGL (EGL device {self.device_index}) is unavailable: {exc}. Install the Debian packages "
                "libegl1 libegl-mesa0 libgl1-mesa-dri (or the GPU driver's EGL), or render with backend='numba'."
            ) from exc
        with ctx:
            size = (self.size, self.size)
            samples = min(self.samples, ctx.max_samples) if self.samples > 1 else 0
            target = ctx.framebuffer(ctx.renderbuffer(size, 4, samples=samples), ctx.depth_renderbuffer(size, samples=samples))
            resolved = ctx.framebuffer(ctx.renderbuffer(size, 4)) if samples else None
        return _Context(os.getpid(), ctx, target, resolved)

    @staticmethod
    def _program(gl: _Context, features: frozenset):
        if features not in gl.programs:
            defines = "".join(f"#define {name}\n" for name in sorted(features))
            gl.programs[features] = gl.ctx.program(vertex_shader=VERTEX_SHADER,
                                                   fragment_shader=f"#version 330\n{defines}{FRAGMENT_SHADER}")
        return gl.programs[features]

    # -- drawing --------------------------------------------------------------------------------
    def render(self, scene: ViewScene, yaws) -> list[np.ndarray]:
        """One (size, size, 3) uint8 RGB view per yaw (degrees), in order."""
        gl = self._ready()
        vertex_data, triangles = _vertex_arrays(scene)
        with gl.ctx as ctx:  # current for these calls: a process may hold several renderers' contexts
            return self._render(gl, ctx, scene, vertex_data, triangles, yaws)

    def _render(self, gl: _Context, ctx, scene: ViewScene, vertex_data, triangles, yaws) -> list[np.ndarray]:
        import moderngl

        owned = []  # objects of this head, released at the end
        try:
            vbo = ctx.buffer(vertex_data.tobytes())
            ibo = ctx.buffer(triangles.tobytes())
            sorted_ibo = ctx.buffer(reserve=max(triangles.nbytes, 4), dynamic=True)
            owned += [vbo, ibo, sorted_ibo]
            textures = {}
            for part in scene.parts:
                if part.image is not None and id(part.image) not in textures:
                    textures[id(part.image)] = _upload_texture(ctx, part.image)
                    owned.append(textures[id(part.image)])
            arrays = {}  # (features, sorted?) -> vertex array over this head's buffers

            def vertex_array(features, is_sorted):
                if (features, is_sorted) not in arrays:
                    program = self._program(gl, features)
                    arrays[features, is_sorted] = ctx.vertex_array(
                        program, [(vbo, "3f 3f 2f", "in_position", "in_normal", "in_uv")],
                        index_buffer=sorted_ibo if is_sorted else ibo, index_element_size=4,
                        skip_errors=True)  # an untextured variant has no in_uv
                    owned.append(arrays[features, is_sorted])
                return arrays[features, is_sorted]

            centre, radius = scene.framing
            opaque = [p for p in scene.parts if p.material.alpha_mode != "BLEND"]
            blended = [p for p in scene.parts if p.material.alpha_mode == "BLEND"]
            centroids = scene.vertices[scene.faces].mean(axis=1) if blended else None
            views = []
            for yaw in yaws:
                rotation = yaw_rotation(yaw)
                shared = dict(rotation=rotation.T.reshape(-1), centre=centre, scale=FRAME_FILL / radius,
                              depth_scale=1.0 / (DEPTH_MARGIN * radius), light=LIGHT, halfway=HALFWAY, ambient=AMBIENT,
                              diffuse=DIFFUSE, alpha_cutoff=ALPHA_CUTOFF, image=0)  # rotation column-major
                gl.target.use()
                ctx.clear(*(c / 255 for c in self.background), 1.0, depth=1.0)
                ctx.enable(moderngl.DEPTH_TEST)
                ctx.disable(moderngl.BLEND)
                ctx.depth_mask = True
                for part in opaque:
                    self._draw(ctx, vertex_array(_features(part), False), part, textures, part.start, shared)
                if blended:
                    ctx.enable(moderngl.BLEND)
                    ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
                    ctx.depth_mask = False
                    depth = centroids @ rotation[2]  # camera z of each triangle's centroid (larger = nearer)
                    order = sorted(blended, key=lambda p: float(depth[p.start:p.stop].mean()))
                    sorted_ibo.write(np.concatenate([triangles[p.start + np.argsort(depth[p.start:p.stop], kind="stable")]
                                                     for p in order]).tobytes())
                    first = 0
                    for part in order:
                        self._draw(ctx, vertex_array(_features(part), True), part, textures, first, shared)
                        first += part.stop - part.start
                views.append(self._read(gl))
            return views
        finally:
            for obj in reversed(owned):
                obj.release()

    @staticmethod
    def _draw(ctx, vao, part, textures, first_triangle: int, shared: dict) -> None:
        """Draw `part`'s triangles, which start at `first_triangle` in `vao`'s index buffer."""
        import moderngl

        material = part.material
        weight, exponent = specular_terms(material)
        _set_uniforms(vao.program, tint=srgb_encode(np.asarray(material.base_color[:3])), opacity=material.base_color[3],
                      keep_alpha=float(material.alpha_mode == "BLEND"), specular=weight, shininess=exponent, **shared)
        if part.image is not None:
            textures[id(part.image)].use(0)
        if material.double_sided:
            ctx.disable(moderngl.CULL_FACE)
        else:
            ctx.enable(moderngl.CULL_FACE)
            ctx.front_face = "ccw"
            ctx.cull_face = "back"
        vao.render(moderngl.TRIANGLES, vertices=3 * (part.stop - part.start), first=3 * first_triangle)

    def _read(self, gl: _Context) -> np.ndarray:
        source = gl.target
        if gl.resolved is not None:
            gl.ctx.copy_framebuffer(gl.resolved, gl.target)
            source = gl.resolved
        pixels = np.frombuffer(source.read(components=3, alignment=1), dtype=np.uint8)
        return pixels.reshape(self.size, self.size, 3)[::-1].copy()  # GL rows run bottom-up


def _features(part) -> frozenset:
    """The shader features a part's material needs (each a #define)."""
    material = part.material
    return frozenset(name for name, needed in (
        ("TEXTURED", part.image is not None),
        ("ALPHA_MASK", material.alpha_mode == "MASK"),
        ("DOUBLE_SIDED", material.double_sided),
        ("SPECULAR", specular_terms(material)[0] > 0),
    ) if needed)


def _set_uniforms(program, **values) -> None:
    """Set the uniforms `program` has (the GLSL compiler drops the ones a variant does not use)."""
    members = set(program)
    for name, value in values.items():
        if name in members:
            program[name].value = tuple(float(v) for v in value) if isinstance(value, (tuple, list, np.ndarray)) else value


def _vertex_arrays(scene: ViewScene) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved (N, 8) float32 position, normal, uv (v flipped for GL's bottom-up rows) and (F, 3) uint32
    triangles, with one GL vertex per distinct (vertex, UV) pair so per-corner UVs survive."""
    faces = scene.faces
    if scene.uvs is None:
        vertex_ids, uvs, triangles = np.arange(len(scene.vertices)), np.zeros((len(scene.vertices), 2), np.float32), faces
    elif len(scene.uvs) == len(scene.vertices) and np.array_equal(scene.uv_faces, faces):
        vertex_ids, uvs, triangles = np.arange(len(scene.vertices)), scene.uvs, faces
    else:
        keys = faces.astype(np.int64) * len(scene.uvs) + scene.uv_faces
        unique, inverse = np.unique(keys.reshape(-1), return_inverse=True)
        vertex_ids = unique // len(scene.uvs)
        uvs = scene.uvs[unique % len(scene.uvs)]
        triangles = inverse.reshape(-1, 3)
    data = np.empty((len(vertex_ids), 8), np.float32)
    data[:, 0:3] = scene.vertices[vertex_ids]
    data[:, 3:6] = scene.normals[vertex_ids]
    data[:, 6] = uvs[:, 0]
    data[:, 7] = 1.0 - uvs[:, 1]
    return data, np.ascontiguousarray(triangles, dtype=np.uint32)


def _upload_texture(ctx, image: np.ndarray):
    """A mipmapped, edge-clamped GL texture of an (H, W, 3|4) uint8 image (row 0 = top = GL t 0)."""
    import moderngl

    height, width, components = image.shape
    texture = ctx.texture((width, height), components, np.ascontiguousarray(image).tobytes(), alignment=1)
    texture.repeat_x = texture.repeat_y = False
    texture.build_mipmaps()
    texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
    return texture
