// CPU backend of the index pass (C++ and OpenMP).
//
// 1. Project every point to a disc and count the 16x16 screen tiles its pixel rectangle touches.
// 2. Project again and write one entry (sort key, disc) per touched tile into that tile's list.
// 3. Per tile, in parallel: sort the list by (depth, index), then walk it near to far, handing each
//    disc to the pixels of its rectangle that it covers, until every pixel of the tile holds L
//    points. The work per pixel is bounded by the discs whose rectangle contains it, up to the
//    L-th covering one.
// The arithmetic (projection, coverage, insertion) comes from peel_common.h, shared with CUDA.
//
// Performance notes: entries carry a copy of their disc so that the tile walk reads memory
// sequentially (point ids are spatially random; looking discs up by id misses the cache), and
// projecting twice is cheaper than storing and re-reading per-point results. The outputs are
// allocated uninitialised and written once, tile by tile, by the threads that own the tiles.
// Loops are scheduled dynamically so that a thread delayed by other load does not stall the rest.
#include <torch/extension.h>

#include <omp.h>

#include <algorithm>
#include <vector>

#include "peel_common.h"

namespace {

using fourk4d::kTileSize;
using fourk4d::PinholeCamera;
using fourk4d::PixelRect;
using fourk4d::ProjectedDisc;

// One (tile, point) pair: the point's (depth, index) sort key and its disc.
struct TileEntry {
  uint64_t key;
  float u, v, rho;
};

bool operator<(const TileEntry& a, const TileEntry& b) { return a.key < b.key; }

PinholeCamera make_camera(const at::Tensor& K, const at::Tensor& R, const at::Tensor& T) {
  const float* k = K.data_ptr<float>();
  const float* r = R.data_ptr<float>();
  const float* t = T.data_ptr<float>();
  PinholeCamera cam;
  cam.fx = k[0];
  cam.cx = k[2];
  cam.fy = k[4];
  cam.cy = k[5];
  for (int i = 0; i < 9; ++i) cam.r[i] = r[i];
  for (int i = 0; i < 3; ++i) cam.t[i] = t[i];
  return cam;
}

void check_input(const at::Tensor& t, const char* name, int64_t numel) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat, name, " must be float32");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(numel < 0 || t.numel() == numel, name, " has ", t.numel(), " elements, expected ",
              numel);
}

// Projects point i and returns its pixel rectangle (empty when the point is not drawn).
inline PixelRect point_rect(const PinholeCamera& cam, const float* xyz, const float* radius,
                            int64_t i, float near, int width, int height, ProjectedDisc& disc) {
  if (!fourk4d::project_disc(cam, xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2], radius[i], near,
                             disc)) {
    return PixelRect{0, 0, -1, -1};
  }
  return fourk4d::disc_pixel_rect(disc, width, height);
}

// Scratch space kept between calls: re-touching fresh pages costs more than the work itself.
std::vector<TileEntry>& entry_buffer() {
  thread_local std::vector<TileEntry> buffer;
  return buffer;
}

}  // namespace

// Returns {idx [H,W,L] int32, depth [H,W,L] float32}; empty slots hold -1 / -1.
std::vector<at::Tensor> peel_points_cpu(const at::Tensor& xyz, const at::Tensor& radius,
                                        const at::Tensor& K, const at::Tensor& R,
                                        const at::Tensor& T, int64_t height, int64_t width,
                                        int64_t layers, double near) {
  check_input(xyz, "xyz", -1);
  TORCH_CHECK(xyz.dim() == 2 && xyz.size(1) == 3, "xyz must be [N, 3]");
  const int64_t n = xyz.size(0);
  TORCH_CHECK(n < (int64_t{1} << 31), "at most 2^31 - 1 points are supported");
  check_input(radius, "radius", n);
  check_input(K, "K", 9);
  check_input(R, "R", 9);
  check_input(T, "T", 3);
  TORCH_CHECK(height > 0 && width > 0 && layers > 0, "height, width and layers must be positive");
  TORCH_CHECK(near > 0.0, "near must be positive");

  const int H = static_cast<int>(height), W = static_cast<int>(width), L = static_cast<int>(layers);
  const float near_f = static_cast<float>(near);
  const PinholeCamera cam = make_camera(K, R, T);
  const int tiles_x = (W + kTileSize - 1) / kTileSize;
  const int tiles_y = (H + kTileSize - 1) / kTileSize;
  const int64_t n_tiles = static_cast<int64_t>(tiles_x) * tiles_y;
  const int threads = std::max(1, at::get_num_threads());
  const float* p = xyz.data_ptr<float>();
  const float* rad = radius.data_ptr<float>();

  // 1. Count entries per tile.
  std::vector<int64_t> tile_start(n_tiles + 1, 0);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4096)
  for (int64_t i = 0; i < n; ++i) {
    ProjectedDisc d;
    const PixelRect r = point_rect(cam, p, rad, i, near_f, W, H, d);
    if (fourk4d::rect_empty(r)) continue;
    for (int ty = r.y0 / kTileSize; ty <= r.y1 / kTileSize; ++ty)
      for (int tx = r.x0 / kTileSize; tx <= r.x1 / kTileSize; ++tx) {
#pragma omp atomic
        tile_start[static_cast<int64_t>(ty) * tiles_x + tx + 1]++;
      }
  }
  for (int64_t t = 0; t < n_tiles; ++t) tile_start[t + 1] += tile_start[t];

  // 2. Fill the tile lists. The order inside a list is arbitrary here; the sort below makes the
  //    result deterministic, since (depth, index) keys are unique.
  std::vector<TileEntry>& entries = entry_buffer();
  entries.resize(tile_start[n_tiles]);
  std::vector<int64_t> cursor(tile_start.begin(), tile_start.end() - 1);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4096)
  for (int64_t i = 0; i < n; ++i) {
    ProjectedDisc d;
    const PixelRect r = point_rect(cam, p, rad, i, near_f, W, H, d);
    if (fourk4d::rect_empty(r)) continue;
    const TileEntry entry{fourk4d::depth_index_key(d.depth, static_cast<int32_t>(i)), d.u, d.v,
                          d.rho};
    for (int ty = r.y0 / kTileSize; ty <= r.y1 / kTileSize; ++ty)
      for (int tx = r.x0 / kTileSize; tx <= r.x1 / kTileSize; ++tx) {
        int64_t slot;
#pragma omp atomic capture
        slot = cursor[static_cast<int64_t>(ty) * tiles_x + tx]++;
        entries[slot] = entry;
      }
  }

  // 3. Per tile: sort near to far, hand each disc to the pixels it covers, write the outputs.
  auto idx = at::empty({height, width, layers}, xyz.options().dtype(at::kInt));
  auto depth = at::empty({height, width, layers}, xyz.options());
  int32_t* idx_out = idx.data_ptr<int32_t>();
  float* depth_out = depth.data_ptr<float>();
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t t = 0; t < n_tiles; ++t) {
    TileEntry* begin = entries.data() + tile_start[t];
    TileEntry* end = entries.data() + tile_start[t + 1];
    std::sort(begin, end);

    const int tx0 = static_cast<int>(t % tiles_x) * kTileSize;
    const int ty0 = static_cast<int>(t / tiles_x) * kTileSize;
    const int tx1 = std::min(tx0 + kTileSize, W) - 1;
    const int ty1 = std::min(ty0 + kTileSize, H) - 1;
    const int n_pixels = (tx1 - tx0 + 1) * (ty1 - ty0 + 1);
    int count[kTileSize * kTileSize] = {0};
    int n_full = 0;
    for (const TileEntry* e = begin; e != end && n_full < n_pixels; ++e) {
      const int32_t id = fourk4d::key_index(e->key);
      ProjectedDisc d;
      d.u = e->u;
      d.v = e->v;
      d.rho = e->rho;
      d.depth = fourk4d::key_depth(e->key);
      const PixelRect r = fourk4d::disc_pixel_rect(d, W, H);
      const int x0 = std::max(r.x0, tx0), x1 = std::min(r.x1, tx1);
      const int y0 = std::max(r.y0, ty0), y1 = std::min(r.y1, ty1);
      for (int y = y0; y <= y1; ++y) {
        const float py = fourk4d::pixel_centre(y);
        for (int x = x0; x <= x1; ++x) {
          int& c = count[(y - ty0) * kTileSize + (x - tx0)];
          if (c >= L) continue;
          if (!fourk4d::disc_covers(fourk4d::disc_dist2(d, fourk4d::pixel_centre(x), py), d.rho))
            continue;
          const int64_t base = (static_cast<int64_t>(y) * W + x) * L;
          fourk4d::LayerSlots slots{idx_out + base, depth_out + base, c, L};
          fourk4d::insert_nearest(slots, d.depth, id);
          c = slots.count;
          if (c == L) ++n_full;
        }
      }
    }
    // Empty the slots no point filled.
    for (int y = ty0; y <= ty1; ++y)
      for (int x = tx0; x <= tx1; ++x) {
        const int64_t base = (static_cast<int64_t>(y) * W + x) * L;
        for (int k = count[(y - ty0) * kTileSize + (x - tx0)]; k < L; ++k) {
          idx_out[base + k] = fourk4d::kEmptyIndex;
          depth_out[base + k] = fourk4d::kEmptyDepth;
        }
      }
  }
  return {idx, depth};
}

// Threads the OpenMP loops above use (torch's intra-op thread count).
int64_t omp_threads() {
  const int threads = std::max(1, at::get_num_threads());
  int used = 0;
#pragma omp parallel num_threads(threads)
  {
#pragma omp single
    used = omp_get_num_threads();
  }
  return used;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("peel_points", &peel_points_cpu, "K-layer depth peeling of point discs (CPU)");
  m.def("omp_threads", &omp_threads, "OpenMP threads used by the CPU backend");
}
