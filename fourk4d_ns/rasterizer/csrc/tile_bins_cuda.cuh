// Screen-tile binning of projected discs for the CUDA backends (index pass and fused renderer).
//
// After a per-point kernel has projected every point (float4 disc u, v, depth, rho), recorded the
// tiles its pixel rectangle touches (`tile_span`) and counted them, `sort_tile_pairs` emits one
// (tile, point) pair per touched tile with the key (tile << 32 | depth bits) and sorts the pairs
// stably, so each tile's points come out near to far, ties in depth by point index. The raster
// kernels then walk each tile's range of the sorted point ids.
#pragma once

#include <torch/extension.h>

#include <c10/cuda/CUDAStream.h>

#include "peel_common.h"

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

// Host copy of a camera.
inline PinholeCamera host_pinhole(const at::Tensor& K, const at::Tensor& R, const at::Tensor& T) {
  const auto k = K.to(at::kCPU, at::kFloat).contiguous();
  const auto r = R.to(at::kCPU, at::kFloat).contiguous();
  const auto t = T.to(at::kCPU, at::kFloat).contiguous();
  PinholeCamera cam;
  cam.fx = k.data_ptr<float>()[0];
  cam.cx = k.data_ptr<float>()[2];
  cam.fy = k.data_ptr<float>()[4];
  cam.cy = k.data_ptr<float>()[5];
  for (int i = 0; i < 9; ++i) cam.r[i] = r.data_ptr<float>()[i];
  for (int i = 0; i < 3; ++i) cam.t[i] = t.data_ptr<float>()[i];
  return cam;
}

}  // namespace fourk4d
