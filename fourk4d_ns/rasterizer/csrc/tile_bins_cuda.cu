// The (tile, point) pair sort shared by the CUDA index pass and the fused renderer
// (see tile_bins_cuda.cuh).
#include <c10/cuda/CUDAException.h>

#include "tile_bins_cuda.cuh"

namespace fourk4d {

namespace {

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

}  // namespace

TilePairs sort_tile_pairs(const PointBins& bins, const TileGrid& grid, cudaStream_t stream) {
  const int64_t n = bins.size();
  const auto options = bins.discs.options();
  TilePairs out{at::Tensor(), at::zeros({grid.count(), 2}, options.dtype(at::kInt)), true};
  if (n == 0) return out;
  const auto offsets = bins.touched.cumsum(0);
  const int64_t total = offsets[n - 1].item<int64_t>();
  if (total == 0) return out;
  TORCH_CHECK(total < (int64_t{1} << 31), "too many (tile, point) pairs: ", total);
  auto keys = at::empty({total}, options.dtype(at::kLong));
  auto point_ids = at::empty({total}, options.dtype(at::kInt));
  emit_kernel<<<point_blocks(n), kPointThreads, 0, stream>>>(
      static_cast<int>(n), bins.disc_data(), bins.rect_data(), offsets.data_ptr<int64_t>(),
      grid.tiles_x, keys.data_ptr<int64_t>(), point_ids.data_ptr<int32_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  // Stable: pairs with equal (tile, depth) keep the emit order, i.e. increasing point index.
  const auto sorted = at::sort(keys, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const auto sorted_keys = std::get<0>(sorted);
  out.sorted_ids = point_ids.index_select(0, std::get<1>(sorted)).contiguous();
  tile_ranges_kernel<<<point_blocks(total), kPointThreads, 0, stream>>>(
      total, sorted_keys.data_ptr<int64_t>(), reinterpret_cast<int2*>(out.ranges.data_ptr<int>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  out.empty = false;
  return out;
}

}  // namespace fourk4d
