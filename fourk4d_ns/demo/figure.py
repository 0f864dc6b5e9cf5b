"""An articulated humanoid figure whose limbs swing over time (the demo capture's subject).

World frame: metres, z up, the figure stands on z = 0 around the z axis and faces -y (its right
side is -x). Every part is a closed triangle mesh rigidly attached to one joint of a small
kinematic tree; the joints rotate over normalized time t in [0, 1], so the whole surface deforms
non-rigidly (walking in place with the legs and left arm, waving with the right arm, a slight
torso twist and a head turn).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from fourk4d_ns.demo.texture import Material, figure_materials


def rot_x(angle: float) -> np.ndarray:
    """Rotation about x by ``angle`` radians; for a limb hanging along -z, positive swings it to +y (backwards)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle: float) -> np.ndarray:
    """Rotation about y by ``angle`` radians; for a limb hanging along -z, positive swings it to -x."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle: float) -> np.ndarray:
    """Rotation about the vertical axis by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Joint:
    """A node of the kinematic tree."""

    name: str
    """Unique joint name."""
    parent: str | None
    """Parent joint (None for the root)."""
    offset: tuple[float, float, float]
    """Position of the joint in its parent's frame (metres)."""


# Listed parents first, so forward kinematics is one pass.
SKELETON: tuple[Joint, ...] = (
    Joint("root", None, (0.0, 0.0, 0.90)),
    Joint("spine", "root", (0.0, 0.0, 0.03)),
    Joint("neck", "spine", (0.0, 0.0, 0.47)),
    Joint("shoulder_l", "spine", (0.20, 0.0, 0.41)),
    Joint("elbow_l", "shoulder_l", (0.0, 0.0, -0.28)),
    Joint("shoulder_r", "spine", (-0.20, 0.0, 0.41)),
    Joint("elbow_r", "shoulder_r", (0.0, 0.0, -0.28)),
    Joint("hip_l", "root", (0.095, 0.0, -0.05)),
    Joint("knee_l", "hip_l", (0.0, 0.0, -0.40)),
    Joint("ankle_l", "knee_l", (0.0, 0.0, -0.40)),
    Joint("hip_r", "root", (-0.095, 0.0, -0.05)),
    Joint("knee_r", "hip_r", (0.0, 0.0, -0.40)),
    Joint("ankle_r", "knee_r", (0.0, 0.0, -0.40)),
)


@dataclass(frozen=True)
class Part:
    """One rigid piece of the surface."""

    name: str
    """Part name (also names its material)."""
    joint: str
    """Joint the part is attached to."""
    shape: str
    """``"ellipsoid"`` (radii = ``size``) or ``"capsule"`` (radius, length = ``size[:2]``, hanging along -z)."""
    size: tuple[float, ...]
    """Shape dimensions in metres (see ``shape``)."""
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Where the part's own frame (texture coordinates) sits in the joint frame."""


PARTS: tuple[Part, ...] = (
    Part("pelvis", "root", "ellipsoid", (0.16, 0.11, 0.12)),
    Part("torso", "spine", "ellipsoid", (0.18, 0.115, 0.26), (0.0, 0.0, 0.24)),
    Part("neck", "neck", "capsule", (0.05, 0.10), (0.0, 0.0, 0.07)),
    Part("head", "neck", "ellipsoid", (0.095, 0.105, 0.12), (0.0, 0.0, 0.17)),
    Part("upper_arm_l", "shoulder_l", "capsule", (0.045, 0.28)),
    Part("forearm_l", "elbow_l", "capsule", (0.038, 0.24)),
    Part("hand_l", "elbow_l", "ellipsoid", (0.028, 0.045, 0.075), (0.0, 0.0, -0.30)),
    Part("upper_arm_r", "shoulder_r", "capsule", (0.045, 0.28)),
    Part("forearm_r", "elbow_r", "capsule", (0.038, 0.24)),
    Part("hand_r", "elbow_r", "ellipsoid", (0.028, 0.045, 0.075), (0.0, 0.0, -0.30)),
    Part("thigh_l", "hip_l", "capsule", (0.065, 0.40)),
    Part("shin_l", "knee_l", "capsule", (0.05, 0.40)),
    Part("foot_l", "ankle_l", "ellipsoid", (0.05, 0.11, 0.04), (0.0, -0.05, -0.01)),
    Part("thigh_r", "hip_r", "capsule", (0.065, 0.40)),
    Part("shin_r", "knee_r", "capsule", (0.05, 0.40)),
    Part("foot_r", "ankle_r", "ellipsoid", (0.05, 0.11, 0.04), (0.0, -0.05, -0.01)),
)


def part_mesh(part: Part) -> trimesh.Trimesh:
    """The part's closed mesh in its own frame (capsules hang from the origin along -z)."""
    if part.shape == "ellipsoid":
        mesh = trimesh.creation.icosphere(subdivisions=3)
        mesh.apply_scale(part.size)
        return mesh
    if part.shape == "capsule":
        radius, length = part.size
        mesh = trimesh.creation.capsule(height=length, radius=radius, count=[16, 24])
        mesh.apply_translation([0.0, 0.0, -length / 2.0])
        return mesh
    raise ValueError(f"unknown part shape {part.shape!r}")


@dataclass(frozen=True)
class Motion:
    """Amplitudes (degrees) and phases (cycles) of the animation; the seed jitters them slightly."""

    walk_cycles: float = 1.5
    """Walking cycles over the sequence; not an integer, so the first and last frames differ."""
    walk_phase: float = 0.25
    """Walking phase at t = 0 (cycles)."""
    hip_flex: float = 45.0
    """Forward flexion of a lifted thigh."""
    knee_flex: float = 80.0
    """Knee bend of a lifted leg."""
    arm_swing: float = 28.0
    """Forward/backward swing of the left arm, opposite to the left leg."""
    wave_cycles: float = 2.5
    """Waving cycles of the raised right forearm over the sequence."""
    wave_phase: float = 0.0
    """Waving phase at t = 0 (cycles)."""
    wave_angle: float = 28.0
    """Half-angle of the forearm's waving arc."""
    torso_twist: float = 8.0
    """Torso twist about the vertical axis, following the steps."""
    head_turn: float = 18.0
    """Head turn about the vertical axis."""
    head_phase: float = 0.1
    """Head turn phase at t = 0 (cycles)."""

    @classmethod
    def jittered(cls, rng: np.random.Generator) -> Motion:
        """Defaults with phases moved by up to 0.04 cycles and amplitudes scaled by up to 6%."""
        base = cls()

        def scaled(value: float) -> float:
            return value * (1.0 + rng.uniform(-0.06, 0.06))

        def shifted(value: float) -> float:
            return value + rng.uniform(-0.04, 0.04)

        return cls(
            walk_cycles=base.walk_cycles,
            walk_phase=shifted(base.walk_phase),
            hip_flex=scaled(base.hip_flex),
            knee_flex=scaled(base.knee_flex),
            arm_swing=scaled(base.arm_swing),
            wave_cycles=base.wave_cycles,
            wave_phase=shifted(base.wave_phase),
            wave_angle=scaled(base.wave_angle),
            torso_twist=scaled(base.torso_twist),
            head_turn=scaled(base.head_turn),
            head_phase=shifted(base.head_phase),
        )

    def joint_rotations(self, time: float) -> dict[str, np.ndarray]:
        """Local rotation of every joint at normalized time ``time``."""
        d = np.radians
        step = np.sin(2.0 * np.pi * (self.walk_cycles * time + self.walk_phase))
        # Squared half-waves: one leg is always straight, so the figure keeps a foot on the ground.
        lift_l, lift_r = max(step, 0.0) ** 2, max(-step, 0.0) ** 2
        wave = np.cos(2.0 * np.pi * (self.wave_cycles * time + self.wave_phase))
        head = np.sin(2.0 * np.pi * (0.75 * time + self.head_phase))

        def leg(lift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            hip, knee = d(self.hip_flex) * lift, d(self.knee_flex) * lift
            # The ankle undoes hip and knee so the sole stays level.
            return rot_x(-hip), rot_x(knee), rot_x(hip - knee)

        hip_l, knee_l, ankle_l = leg(lift_l)
        hip_r, knee_r, ankle_r = leg(lift_r)
        return {
            "root": np.eye(3),
            "spine": rot_z(d(self.torso_twist) * step) @ rot_x(-d(3.0) * (lift_l + lift_r)),
            "neck": rot_z(d(self.head_turn) * head) @ rot_x(d(4.0) * wave),
            "shoulder_l": rot_y(-d(8.0)) @ rot_x(d(self.arm_swing) * step),
            "elbow_l": rot_x(-d(20.0 + 20.0 * max(-step, 0.0))),
            # Right upper arm raised sideways, forearm up and waving in the body's plane.
            "shoulder_r": rot_y(d(80.0 + 5.0 * wave)),
            "elbow_r": rot_y(d(100.0 + self.wave_angle * wave)),
            "hip_l": hip_l,
            "knee_l": knee_l,
            "ankle_l": ankle_l,
            "hip_r": hip_r,
            "knee_r": knee_r,
            "ankle_r": ankle_r,
        }


@dataclass
class PosedSurface:
    """The figure's triangle surface at one instant, with what shading and texturing need."""

    vertices: np.ndarray
    """World positions [V,3]."""
    faces: np.ndarray
    """Vertex indices [F,3]."""
    normals: np.ndarray
    """Unit vertex normals in world coordinates [V,3] (smooth within each part)."""
    texture_coords: np.ndarray
    """Rest position of every vertex in its part's own frame [V,3], metres; moves with the surface."""
    vertex_part: np.ndarray
    """Index into ``ArticulatedFigure.parts`` of each vertex [V]."""

    def to_trimesh(self) -> trimesh.Trimesh:
        """A ``trimesh.Trimesh`` of this surface (vertex order and faces kept as they are)."""
        return trimesh.Trimesh(vertices=self.vertices, faces=self.faces, vertex_normals=self.normals, process=False)


class ArticulatedFigure:
    """A ~1.7 m tall textured humanoid of capsules and ellipsoids, posed at normalized time."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        self.motion = Motion.jittered(rng)
        self.parts = PARTS
        self.materials: list[Material] = figure_materials([p.name for p in PARTS], rng)
        self._joint_index = {joint.name: i for i, joint in enumerate(SKELETON)}

        positions, normals, faces, texture_coords, vertex_part, vertex_joint = [], [], [], [], [], []
        count = 0
        for index, part in enumerate(PARTS):
            mesh = part_mesh(part)
            positions.append(mesh.vertices + np.asarray(part.center))
            normals.append(np.asarray(mesh.vertex_normals))
            texture_coords.append(np.asarray(mesh.vertices))
            faces.append(mesh.faces + count)
            vertex_part.append(np.full(len(mesh.vertices), index))
            vertex_joint.append(np.full(len(mesh.vertices), self._joint_index[part.joint]))
            count += len(mesh.vertices)
        self._rest_positions = np.concatenate(positions)  # in each vertex's joint frame
        self._rest_normals = np.concatenate(normals)
        self.faces = np.concatenate(faces).astype(np.int64)
        self.texture_coords = np.concatenate(texture_coords)
        self.vertex_part = np.concatenate(vertex_part)
        self._vertex_joint = np.concatenate(vertex_joint)

    def joint_frames(self, time: float) -> tuple[np.ndarray, np.ndarray]:
        """World rotations [J,3,3] and positions [J,3] of the joints (before ground contact)."""
        local = self.motion.joint_rotations(float(time))
        rotations = np.zeros((len(SKELETON), 3, 3))
        positions = np.zeros((len(SKELETON), 3))
        for i, joint in enumerate(SKELETON):
            if joint.parent is None:
                rotations[i], positions[i] = local[joint.name], joint.offset
            else:
                p = self._joint_index[joint.parent]
                rotations[i] = rotations[p] @ local[joint.name]
                positions[i] = positions[p] + rotations[p] @ np.asarray(joint.offset)
        return rotations, positions

    def pose(self, time: float) -> PosedSurface:
        """The posed surface at normalized time ``time`` in [0, 1], resting on z = 0."""
        rotations, positions = self.joint_frames(time)
        vertex_rotation = rotations[self._vertex_joint]
        vertices = np.einsum("vij,vj->vi", vertex_rotation, self._rest_positions)
        vertices += positions[self._vertex_joint]
        vertices[:, 2] -= vertices[:, 2].min()  # the lowest point touches the floor
        normals = np.einsum("vij,vj->vi", vertex_rotation, self._rest_normals)
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        return PosedSurface(vertices, self.faces, normals, self.texture_coords, self.vertex_part)

    def mesh_at(self, time: float) -> trimesh.Trimesh:
        """The posed, concatenated mesh at normalized time ``time`` (same vertex order at every time)."""
        return self.pose(time).to_trimesh()

    def bounds_at(self, time: float) -> np.ndarray:
        """Axis-aligned [min, max] corners [2,3] of the posed mesh."""
        vertices = self.pose(time).vertices
        return np.stack([vertices.min(axis=0), vertices.max(axis=0)])

    def surface_points(self, time: float, count: int, seed: int = 0) -> np.ndarray:
        """``count`` points [count,3] drawn uniformly (by area) on the posed surface."""
        surface = self.pose(time)
        triangles = surface.vertices[surface.faces]
        areas = 0.5 * np.linalg.norm(
            np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1
        )
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(areas), size=count, p=areas / areas.sum())
        u, v = rng.random(count), rng.random(count)
        flip = u + v > 1.0  # fold the unit square onto the triangle
        u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
        t = triangles[chosen]
        return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
