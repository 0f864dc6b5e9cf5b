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

TilePairs sort_tile_pairs(const at::Tensor& discs, const at::Tensor& tile_rects,
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
  emit_kernel<<<static_cast<int>((n + threads - 1) / threads), threads, 0,
                                  stream>>>(
      static_cast<int>(n), reinterpret_cast<const float4*>(discs.data_ptr<float>()),
      reinterpret_cast<const int4*>(tile_rects.data_ptr<int>()), offsets.data_ptr<int64_t>(),
      tiles_x, keys.data_ptr<int64_t>(), point_ids.data_ptr<int32_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  // Stable: pairs with equal (tile, depth) keep the emit order, i.e. increasing point index.
  const auto sorted = at::sort(keys, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const auto sorted_keys = std::get<0>(sorted);
  out.sorted_ids = point_ids.index_select(0, std::get<1>(sorted)).contiguous();
  tile_ranges_kernel<<<static_cast<int>((total + threads - 1) / threads),
                                         threads, 0, stream>>>(
      total, sorted_keys.data_ptr<int64_t>(), reinterpret_cast<int2*>(out.ranges.data_ptr<int>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  out.empty = false;
  return out;
}

}  // namespace fourk4d
