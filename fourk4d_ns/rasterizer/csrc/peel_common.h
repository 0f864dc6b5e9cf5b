// Per-point and per-pixel arithmetic of the point rasterizer, shared by the CPU (C++/OpenMP) and
// CUDA backends. Everything is a small inline function so that an index pass, and later a fused
// "rasterize + blend" kernel, can call the same code.
//
// Exactness: both compiled backends must reproduce the pure-torch reference (reference.py) bit for
// bit. Every quantity is therefore computed in float32 with a fixed operation order that the
// reference mirrors op for op (no matrix products, no reassociation). The C++ build uses
// -ffp-contract=off and the CUDA build --fmad=false so that the compiler never contracts a multiply
// and an add into one FMA (which rounds once instead of twice). Divisions are IEEE (no fast math).
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define PEEL_HD __host__ __device__ __forceinline__
#else
#define PEEL_HD inline
#endif

namespace fourk4d {

// Side of the square screen tiles used for binning (pixels).
constexpr int kTileSize = 16;
// Index and depth written to slots that no point fills.
constexpr int32_t kEmptyIndex = -1;
constexpr float kEmptyDepth = -1.0f;

// OpenCV pinhole camera: x_cam = R x_world + T, u = fx * x / z + cx, v = fy * y / z + cy.
struct PinholeCamera {
  float fx, fy, cx, cy;
  float r[9];  // row major
  float t[3];
};

// A point projected to the image: a disc of pixel radius `rho` centered at (u, v).
struct ProjectedDisc {
  float u, v;
  float depth;  // camera z
  float rho;
};

// Inclusive pixel rectangle; empty when x0 > x1 or y0 > y1.
struct PixelRect {
  int x0, y0, x1, y1;
};

PEEL_HD float fmin_(float a, float b) { return a < b ? a : b; }
PEEL_HD float fmax_(float a, float b) { return a > b ? a : b; }
PEEL_HD float fabs_(float a) { return a < 0.0f ? -a : a; }
// Exact floor / ceil for |x| < 2^31 without a libm call (baseline x86-64 has no round insn).
PEEL_HD int floor_to_int(float x) {
  const int i = static_cast<int>(x);  // truncates toward zero
  return static_cast<float>(i) > x ? i - 1 : i;
}
PEEL_HD int ceil_to_int(float x) {
  const int i = static_cast<int>(x);
  return static_cast<float>(i) < x ? i + 1 : i;
}

// Projects a world point with world radius `r`. Returns false when the point cannot be drawn:
// closer than the near plane (z < near; the test also rejects NaN) or a disc of zero (or
// negative) radius.
// The operation order here is the contract the torch reference follows.
PEEL_HD bool project_disc(const PinholeCamera& cam, float x, float y, float z, float r, float near,
                          ProjectedDisc& out) {
  const float xc = ((cam.r[0] * x + cam.r[1] * y) + cam.r[2] * z) + cam.t[0];
  const float yc = ((cam.r[3] * x + cam.r[4] * y) + cam.r[5] * z) + cam.t[1];
  const float zc = ((cam.r[6] * x + cam.r[7] * y) + cam.r[8] * z) + cam.t[2];
  if (!(zc >= near)) return false;
  out.u = (cam.fx * xc) / zc + cam.cx;
  out.v = (cam.fy * yc) / zc + cam.cy;
  out.depth = zc;
  out.rho = (cam.fy * r) / zc;
  return out.rho > 0.0f;
}

// Continuous coordinate of the center of pixel column/row i.
PEEL_HD float pixel_center(int i) { return static_cast<float>(i) + 0.5f; }

// Squared pixel distance from a pixel center (px, py) to the disc center.
PEEL_HD float disc_dist2(const ProjectedDisc& d, float px, float py) {
  const float dx = px - d.u;
  const float dy = py - d.v;
  return dx * dx + dy * dy;
}

// A disc covers a pixel center when the squared distance is strictly below rho^2.
PEEL_HD bool disc_covers(float dist2, float rho) { return dist2 < rho * rho; }

// Opacity of a disc at a pixel center: clip(sigma * (1 - d^2 / rho^2), 0, 1). Not used by the index
// pass; kept next to the coverage test for kernels that blend while rasterizing.
PEEL_HD float disc_alpha(float dist2, float rho, float sigma) {
  const float a = sigma * (1.0f - dist2 / (rho * rho));
  return fmin_(fmax_(a, 0.0f), 1.0f);
}

// Pixels whose center the disc may cover: a superset of the pixels passing disc_covers. The margin
// (a small absolute term plus a relative one) absorbs the rounding of the float coverage test, so
// binning never drops a pixel the exact test would accept. Values are clamped to the image in float
// before conversion, so far-away or huge discs cannot overflow an int.
PEEL_HD PixelRect disc_pixel_rect(const ProjectedDisc& d, int width, int height) {
  const float margin = 1e-3f + 1e-5f * (fabs_(d.u) + fabs_(d.v) + d.rho);
  // Pixel x is a candidate when |x + 0.5 - u| < rho, i.e. u - rho - 0.5 < x < u + rho - 0.5.
  // Clamping to [-1, size] first keeps the conversion to int in range (NaN clamps to the bounds).
  const float w = static_cast<float>(width), h = static_cast<float>(height);
  const float fx0 = fmin_(fmax_(d.u - d.rho - 0.5f - margin, -1.0f), w);
  const float fx1 = fmax_(fmin_(d.u + d.rho - 0.5f + margin, w), -1.0f);
  const float fy0 = fmin_(fmax_(d.v - d.rho - 0.5f - margin, -1.0f), h);
  const float fy1 = fmax_(fmin_(d.v + d.rho - 0.5f + margin, h), -1.0f);
  PixelRect rect;
  rect.x0 = ceil_to_int(fx0);
  rect.x1 = floor_to_int(fx1);
  rect.y0 = ceil_to_int(fy0);
  rect.y1 = floor_to_int(fy1);
  rect.x0 = rect.x0 < 0 ? 0 : rect.x0;
  rect.y0 = rect.y0 < 0 ? 0 : rect.y0;
  rect.x1 = rect.x1 > width - 1 ? width - 1 : rect.x1;
  rect.y1 = rect.y1 > height - 1 ? height - 1 : rect.y1;
  return rect;
}

PEEL_HD bool rect_empty(const PixelRect& r) { return r.x0 > r.x1 || r.y0 > r.y1; }

// The screen tiles (inclusive tile coordinates) that a disc's pixel rectangle touches; false when
// it touches none. The binning step of every backend.
PEEL_HD bool disc_tiles(const ProjectedDisc& d, int width, int height, PixelRect& tiles) {
  const PixelRect r = disc_pixel_rect(d, width, height);
  if (rect_empty(r)) return false;
  tiles = PixelRect{r.x0 / kTileSize, r.y0 / kTileSize, r.x1 / kTileSize, r.y1 / kTileSize};
  return true;
}

// Depth order of two candidates; equal depths are ordered by point index, so results are exact and
// independent of the order in which candidates arrive.
PEEL_HD bool nearer(float depth_a, int32_t id_a, float depth_b, int32_t id_b) {
  return depth_a < depth_b || (depth_a == depth_b && id_a < id_b);
}

// The L slots of one pixel, kept sorted near to far. `ids`/`depths` point to `capacity` entries.
struct LayerSlots {
  int32_t* ids;
  float* depths;
  int count;
  int capacity;
};

PEEL_HD bool slots_full(const LayerSlots& s) { return s.count >= s.capacity; }

// Inserts a covering candidate, keeping the `capacity` nearest ones sorted by (depth, index). A
// candidate farther than all kept ones of a full pixel is dropped. When candidates arrive in
// increasing (depth, index) order, as from the sorted tile lists, this is an append (one compare).
PEEL_HD void insert_nearest(LayerSlots& s, float depth, int32_t id) {
  int k = s.count;
  if (k >= s.capacity) {
    if (!nearer(depth, id, s.depths[k - 1], s.ids[k - 1])) return;
    k = s.capacity - 1;
  } else {
    s.count = k + 1;
  }
  while (k > 0 && nearer(depth, id, s.depths[k - 1], s.ids[k - 1])) {
    s.depths[k] = s.depths[k - 1];
    s.ids[k] = s.ids[k - 1];
    --k;
  }
  s.depths[k] = depth;
  s.ids[k] = id;
}

// Sort key of a (depth, index) pair within a tile: positive float depths compare like their bit
// patterns, so (bits << 32 | index) orders by depth, then index. Requires depth > 0 (near > 0).
PEEL_HD uint64_t depth_index_key(float depth, int32_t id) {
  union {
    float f;
    uint32_t u;
  } bits;
  bits.f = depth;
  return (static_cast<uint64_t>(bits.u) << 32) | static_cast<uint32_t>(id);
}

PEEL_HD int32_t key_index(uint64_t key) { return static_cast<int32_t>(key & 0xffffffffu); }

PEEL_HD float key_depth(uint64_t key) {
  union {
    uint32_t u;
    float f;
  } bits;
  bits.u = static_cast<uint32_t>(key >> 32);
  return bits.f;
}

}  // namespace fourk4d
