// Screen-tile binning of projected discs for the CUDA backends (index pass and fused renderer).
//
// After a per-point kernel has projected every point (`bin_point`: float4 disc u, v, depth, rho,
// the tiles its pixel rectangle touches and their count, into PointBins), `sort_tile_pairs` emits
// one (tile, point) pair per touched tile with the key (tile << 32 | depth bits) and radix-sorts
// the point ids stably by key, on the key bits in use only, so each tile's points come out near to
// far, ties in depth by point index. Sizing the pairs costs one host sync per frame (the pair
// count). The raster kernels then walk each tile's range of the sorted point ids, one thread per
// pixel.
#pragma once

#include <torch/extension.h>

#include <c10/cuda/CUDAStream.h>

#include "host_common.h"

namespace fourk4d {

// Threads of a tile's block (one per pixel).
constexpr int kTileThreads = kTileSize * kTileSize;
// Threads per block of the per-point (and per-pair) kernels.
constexpr int kPointThreads = 256;

// Blocks of kPointThreads covering `count` items.
inline int point_blocks(int64_t count) {
  return static_cast<int>((count + kPointThreads - 1) / kPointThreads);
}

// Tiles (x0, y0, x1, y1) touched by a disc's pixel rectangle and their number (0: none).
__device__ __forceinline__ int64_t tile_span(const ProjectedDisc& d, int width, int height,
                                             int4& tiles) {
  PixelRect t;
  if (!disc_tiles(d, width, height, t)) {
    tiles = make_int4(0, 0, -1, -1);
    return 0;
  }
  tiles = make_int4(t.x0, t.y0, t.x1, t.y1);
  return static_cast<int64_t>(t.x1 - t.x0 + 1) * (t.y1 - t.y0 + 1);
}

// Projects point i and records its disc, the tiles it touches and their number (returned; 0 when
// the point is not drawn): the per-point step of every CUDA backend.
__device__ __forceinline__ int64_t bin_point(const PinholeCamera& cam, float x, float y, float z,
                                             float radius, float near, int width, int height,
                                             int i, float4* __restrict__ discs,
                                             int4* __restrict__ tile_rects,
                                             int64_t* __restrict__ touched) {
  ProjectedDisc d{0.0f, 0.0f, 0.0f, 0.0f};
  int4 tiles = make_int4(0, 0, -1, -1);
  int64_t count = 0;
  if (project_disc(cam, x, y, z, radius, near, d)) count = tile_span(d, width, height, tiles);
  discs[i] = make_float4(d.u, d.v, d.depth, d.rho);
  tile_rects[i] = tiles;
  touched[i] = count;
  return count;
}

// What bin_point writes for N points, on the GPU: discs [N, 4] float32 (u, v, depth, rho),
// tile_rects [N, 4] int32 and touched [N] int64.
struct PointBins {
  at::Tensor discs, tile_rects, touched;

  PointBins(int64_t n, const at::TensorOptions& options)
      : discs(at::empty({n, 4}, options.dtype(at::kFloat))),
        tile_rects(at::empty({n, 4}, options.dtype(at::kInt))),
        touched(at::empty({n}, options.dtype(at::kLong))) {}
  int64_t size() const { return discs.size(0); }
  float4* disc_data() const { return reinterpret_cast<float4*>(discs.data_ptr<float>()); }
  int4* rect_data() const { return reinterpret_cast<int4*>(tile_rects.data_ptr<int>()); }
  int64_t* touched_data() const { return touched.data_ptr<int64_t>(); }
};

// Sorted (tile, point) pairs: point ids near to far within each tile, and each tile's [start, end)
// range into them ([tiles, 2] int32). `empty` when no point touches any tile.
struct TilePairs {
  at::Tensor sorted_ids;
  at::Tensor ranges;
  bool empty;
};

// Defined in tile_bins_cuda.cu.
TilePairs sort_tile_pairs(const PointBins& bins, const TileGrid& grid, cudaStream_t stream);

}  // namespace fourk4d
