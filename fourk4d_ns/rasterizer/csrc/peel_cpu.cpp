// CPU backend of the index pass (C++ and OpenMP): the tile binning of tile_bins_cpu.h, with each
// pixel keeping the indices and depths of its first L covering discs. The arithmetic (projection,
// coverage, depth order) comes from peel_common.h, shared with CUDA.
#include "peel_cpu.h"

#include "tile_bins_cpu.h"

namespace {

using fourk4d::ProjectedDisc;

// One (tile, point) pair: the point's (depth, index) sort key and its disc.
struct TileEntry {
  uint64_t key;
  float u, v, rho;
};

}  // namespace

std::vector<at::Tensor> peel_points_cpu(const at::Tensor& xyz, const at::Tensor& radius,
                                        const at::Tensor& camera, int64_t height, int64_t width,
                                        int64_t layers, double near) {
  const int64_t n =
      fourk4d::check_peel_inputs(xyz, radius, height, width, layers, near, at::kCPU);
  const int L = static_cast<int>(layers);
  const float near_f = static_cast<float>(near);
  const fourk4d::PinholeCamera cam = fourk4d::make_camera(camera);
  const fourk4d::TileGrid grid(static_cast<int>(width), static_cast<int>(height));
  const float* p = xyz.data_ptr<float>();
  const float* rad = radius.data_ptr<float>();

  auto disc_of = [&](int64_t i, ProjectedDisc& d) {
    return fourk4d::project_disc(cam, p[3 * i], p[3 * i + 1], p[3 * i + 2], rad[i], near_f, d);
  };
  auto entry_of = [](int64_t i, const ProjectedDisc& d) {
    return TileEntry{fourk4d::depth_index_key(d.depth, static_cast<int32_t>(i)), d.u, d.v, d.rho};
  };
  std::vector<int64_t> tile_start;
  std::vector<TileEntry>& entries = fourk4d::entry_buffer<TileEntry>();
  fourk4d::bin_discs(n, grid, disc_of, entry_of, tile_start, entries);

  // Outputs are allocated uninitialized and written once, tile by tile, by the owning threads.
  auto idx = at::empty({height, width, layers}, xyz.options().dtype(at::kInt));
  auto depth = at::empty({height, width, layers}, xyz.options());
  int32_t* idx_out = idx.data_ptr<int32_t>();
  float* depth_out = depth.data_ptr<float>();
  const int W = grid.width;
  // Entries arrive near to far, so the layer-th covering disc goes to slot `layer`.
  auto visit = [&](const fourk4d::TileWindow&, int x, int y, int layer, const TileEntry& e,
                   const ProjectedDisc& d, float) {
    const int64_t at = (static_cast<int64_t>(y) * W + x) * L + layer;
    idx_out[at] = fourk4d::key_index(e.key);
    depth_out[at] = d.depth;
  };
  auto end_tile = [&](const fourk4d::TileWindow& w, const int* count) {
    for (int y = w.y0; y <= w.y1; ++y)
      for (int x = w.x0; x <= w.x1; ++x) {
        const int64_t base = (static_cast<int64_t>(y) * W + x) * L;
        for (int k = count[w.local(x, y)]; k < L; ++k) {
          idx_out[base + k] = fourk4d::kEmptyIndex;
          depth_out[base + k] = fourk4d::kEmptyDepth;
        }
      }
  };
  fourk4d::walk_tiles(grid, L, tile_start, entries, visit, end_tile);
  return {idx, depth};
}

int64_t omp_threads() {
  const int threads = fourk4d::cpu_threads();
  int used = 0;
#pragma omp parallel num_threads(threads)
  {
#pragma omp single
    used = omp_get_num_threads();
  }
  return used;
}
