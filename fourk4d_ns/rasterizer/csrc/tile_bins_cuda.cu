// The (tile, point) pair sort shared by the CUDA index pass and the fused renderer
// (see tile_bins_cuda.cuh).
#include <c10/cuda/CUDAException.h>
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>

#include "tile_bins_cuda.cuh"

namespace fourk4d {

namespace {

__global__ void emit_kernel(int n, const float4* __restrict__ discs,
                            const int4* __restrict__ tile_rects,
                            const int64_t* __restrict__ inclusive_offsets, int tiles_x,
                            uint64_t* __restrict__ keys, int32_t* __restrict__ point_ids) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int4 t = tile_rects[i];
  int64_t o = i == 0 ? 0 : inclusive_offsets[i - 1];
  const uint64_t depth_bits = static_cast<uint64_t>(__float_as_uint(discs[i].z));
  for (int ty = t.y; ty <= t.w; ++ty)
    for (int tx = t.x; tx <= t.z; ++tx) {
      const uint64_t tile = static_cast<uint64_t>(ty) * tiles_x + tx;
      keys[o] = (tile << 32) | depth_bits;
      point_ids[o] = i;
      ++o;
    }
}

__global__ void tile_ranges_kernel(int64_t m, const uint64_t* __restrict__ keys,
                                   int2* __restrict__ ranges) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m) return;
  const uint64_t tile = keys[i] >> 32;
  if (i == 0 || (keys[i - 1] >> 32) != tile) ranges[tile].x = static_cast<int>(i);
  if (i == m - 1 || (keys[i + 1] >> 32) != tile) ranges[tile].y = static_cast<int>(i + 1);
}

// Bits that hold a tile index below `tiles` (0 for a single tile).
int tile_bits(int64_t tiles) {
  int bits = 0;
  while ((int64_t{1} << bits) < tiles) ++bits;
  return bits;
}

}  // namespace

TilePairs sort_tile_pairs(const PointBins& bins, const TileGrid& grid, cudaStream_t stream) {
  const int64_t n = bins.size();
  const auto options = bins.discs.options();
  TilePairs out{at::Tensor(), at::zeros({grid.count(), 2}, options.dtype(at::kInt)), true};
  if (n == 0) return out;
  const auto offsets = bins.touched.cumsum(0);
  // The one host sync of a frame: the number of pairs sizes the buffers and the sort, and no bound
  // known beforehand is tight (one disc may touch every tile).
  const int64_t total = offsets[n - 1].item<int64_t>();
  if (total == 0) return out;
  TORCH_CHECK(total < (int64_t{1} << 31), "too many (tile, point) pairs: ", total);
  // Row 0 holds the emitted pairs; the sort ping-pongs between the rows (cub::DoubleBuffer).
  auto keys = at::empty({2, total}, options.dtype(at::kLong));
  auto ids = at::empty({2, total}, options.dtype(at::kInt));
  uint64_t* key_rows = reinterpret_cast<uint64_t*>(keys.data_ptr<int64_t>());
  int32_t* id_rows = ids.data_ptr<int32_t>();
  emit_kernel<<<point_blocks(n), kPointThreads, 0, stream>>>(
      static_cast<int>(n), bins.disc_data(), bins.rect_data(), offsets.data_ptr<int64_t>(),
      grid.tiles_x, key_rows, id_rows);
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  // Point ids sorted by key, on the key bits in use only: 32 depth bits below the tile index. The
  // radix sort is stable, so pairs with equal (tile, depth) keep the emit order: increasing point
  // index. Its scratch space comes from torch's caching allocator, which hands the same block back
  // frame after frame (no cudaMalloc in steady state).
  cub::DoubleBuffer<uint64_t> sorted_keys(key_rows, key_rows + total);
  cub::DoubleBuffer<int32_t> sorted_ids(id_rows, id_rows + total);
  const int end_bit = 32 + tile_bits(grid.count());
  const int items = static_cast<int>(total);
  size_t scratch_bytes = 0;
  C10_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, scratch_bytes, sorted_keys, sorted_ids,
                                                 items, 0, end_bit, stream));
  // At least one byte: a null scratch pointer would make the second call a size query again.
  const int64_t scratch_size = std::max<int64_t>(static_cast<int64_t>(scratch_bytes), 1);
  auto scratch = at::empty({scratch_size}, options.dtype(at::kByte));
  C10_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(scratch.data_ptr(), scratch_bytes, sorted_keys,
                                                 sorted_ids, items, 0, end_bit, stream));
  out.sorted_ids = ids[sorted_ids.selector];
  tile_ranges_kernel<<<point_blocks(total), kPointThreads, 0, stream>>>(
      total, sorted_keys.Current(), reinterpret_cast<int2*>(out.ranges.data_ptr<int>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  out.empty = false;
  return out;
}

}  // namespace fourk4d
