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

namespace tile_bins_detail {

__global__ void emit_kernel(int n, const float4* __restrict__ discs,
                            const int4* __restrict__ tile_rects,
                            const int64_t* __restrict__ inclusive_offsets, int tiles_x,
                            int64_t* __restrict__ keys, int32_t* __restrict__ point_ids) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int4 t = tile_rects[i];
  int64_t o = i == 0 ? 0 : inclusive_offsets[i - 1];
  const uint64_t depth_bits = static_cast<uint64_t>(__float_as_uint(discs[i].z));
  for (int ty = t.y; ty <= t.w; ++ty)
    for (int tx = t.x; tx <= t.z; ++tx) {
      const uint64_t tile = static_cast<uint64_t>(ty) * tiles_x + tx;
      keys[o] = static_cast<int64_t>((tile << 32) | depth_bits);
      point_ids[o] = i;
      ++o;
    }
}

__global__ void tile_ranges_kernel(int64_t m, const int64_t* __restrict__ keys,
                                   int2* __restrict__ ranges) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m) return;
  const int64_t tile = keys[i] >> 32;
  if (i == 0 || (keys[i - 1] >> 32) != tile) ranges[tile].x = static_cast<int>(i);
  if (i == m - 1 || (keys[i + 1] >> 32) != tile) ranges[tile].y = static_cast<int>(i + 1);
}

}  // namespace tile_bins_detail

// Sorted (tile, point) pairs: point ids near to far within each tile, and each tile's [start, end)
// range into them ([tiles, 2] int32). `empty` when no point touches any tile.
struct TilePairs {
  at::Tensor sorted_ids;
  at::Tensor ranges;
  bool empty;
};

// discs [N, 4] float32, tile_rects [N, 4] int32, touched [N] int64, all on the GPU.
inline TilePairs sort_tile_pairs(const at::Tensor& discs, const at::Tensor& tile_rects,
                                 const at::Tensor& touched, int tiles_x, int tiles_y,
                                 cudaStream_t stream) {
  const int64_t n = discs.size(0);
  const auto options = discs.options();
  TilePairs out{at::Tensor(), at::zeros({static_cast<int64_t>(tiles_x) * tiles_y, 2},
                                        options.dtype(at::kInt)),
                true};
  if (n == 0) return out;
  const auto offsets = touched.cumsum(0);
  const int64_t total = offsets[n - 1].item<int64_t>();
  if (total == 0) return out;
  TORCH_CHECK(total < (int64_t{1} << 31), "too many (tile, point) pairs: ", total);
  auto keys = at::empty({total}, options.dtype(at::kLong));
  auto point_ids = at::empty({total}, options.dtype(at::kInt));
  const int threads = 256;
  tile_bins_detail::emit_kernel<<<static_cast<int>((n + threads - 1) / threads), threads, 0,
                                  stream>>>(
      static_cast<int>(n), reinterpret_cast<const float4*>(discs.data_ptr<float>()),
      reinterpret_cast<const int4*>(tile_rects.data_ptr<int>()), offsets.data_ptr<int64_t>(),
      tiles_x, keys.data_ptr<int64_t>(), point_ids.data_ptr<int32_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  // Stable: pairs with equal (tile, depth) keep the emit order, i.e. increasing point index.
  const auto sorted = at::sort(keys, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const auto sorted_keys = std::get<0>(sorted);
  out.sorted_ids = point_ids.index_select(0, std::get<1>(sorted)).contiguous();
  tile_bins_detail::tile_ranges_kernel<<<static_cast<int>((total + threads - 1) / threads),
                                         threads, 0, stream>>>(
      total, sorted_keys.data_ptr<int64_t>(), reinterpret_cast<int2*>(out.ranges.data_ptr<int>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  out.empty = false;
  return out;
}

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
