// Screen-tile binning of projected discs for the CUDA backends (index pass and fused renderer).
//
// After a per-point kernel has projected every point (`bin_point`: float4 disc u, v, depth, rho,
// the tiles its pixel rectangle touches and their count), `sort_tile_pairs` emits one
// (tile, point) pair per touched tile with the key (tile << 32 | depth bits) and sorts the pairs
// stably, so each tile's points come out near to far, ties in depth by point index. The raster
// kernels then walk each tile's range of the sorted point ids.
#pragma once

#include <torch/extension.h>

#include <c10/cuda/CUDAStream.h>

#include "host_camera.h"

namespace fourk4d {

// Tiles (x0, y0, x1, y1) touched by a disc's pixel rectangle and their number (0: none).
__device__ __forceinline__ int64_t tile_span(const ProjectedDisc& d, int width, int height,
                                             int4& tiles) {
  const PixelRect r = disc_pixel_rect(d, width, height);
  if (rect_empty(r)) {
    tiles = make_int4(0, 0, -1, -1);
    return 0;
  }
  tiles = make_int4(r.x0 / kTileSize, r.y0 / kTileSize, r.x1 / kTileSize, r.y1 / kTileSize);
  return static_cast<int64_t>(tiles.z - tiles.x + 1) * (tiles.w - tiles.y + 1);
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

// Sorted (tile, point) pairs: point ids near to far within each tile, and each tile's [start, end)
// range into them ([tiles, 2] int32). `empty` when no point touches any tile.
struct TilePairs {
  at::Tensor sorted_ids;
  at::Tensor ranges;
  bool empty;
};

// discs [N, 4] float32, tile_rects [N, 4] int32, touched [N] int64, all on the GPU
// (defined in tile_bins_cuda.cu).
TilePairs sort_tile_pairs(const at::Tensor& discs, const at::Tensor& tile_rects,
                          const at::Tensor& touched, int tiles_x, int tiles_y, cudaStream_t stream);

}  // namespace fourk4d
