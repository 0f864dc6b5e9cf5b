// CUDA backend of the index pass: the CPU algorithm (peel_cpu.cpp) mapped to the GPU.
//
// 1. One thread per point projects it (peel_common.h) and counts the 16x16 tiles it touches.
// 2. Each (tile, point) pair is emitted with the key (tile << 32 | depth bits); a stable radix
//    sort orders the pairs by tile, then depth, then point index (the emit order).
// 3. One 16x16 thread block per tile: the tile's sorted points are staged through shared memory in
//    batches, each thread (pixel) keeps the first L covering points, and the block stops once every
//    pixel is full. Coverage, insertion and projection are the shared header's functions, so the
//    result equals the CPU backend and the torch reference bit for bit (built with --fmad=false).
#include <torch/extension.h>

// c10's stream header rather than ATen/cuda/CUDAContext.h, which needs the cuSPARSE/cuBLAS headers
// that a bare CUDA toolkit may lack.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "peel_cuda.h"
#include "tile_bins_cuda.cuh"

namespace {

using fourk4d::kTileSize;
using fourk4d::kTileThreads;
using fourk4d::PinholeCamera;
using fourk4d::ProjectedDisc;

__global__ void project_kernel(int n, const float* __restrict__ xyz,
                               const float* __restrict__ radius, PinholeCamera cam, float near,
                               int width, int height, float4* __restrict__ discs,
                               int4* __restrict__ tile_rects, int64_t* __restrict__ touched) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  fourk4d::bin_point(cam, xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2], radius[i], near, width,
                     height, i, discs, tile_rects, touched);
}

__global__ void raster_kernel(int width, int height, int layers, int tiles_x,
                              const int2* __restrict__ ranges,
                              const int32_t* __restrict__ point_ids,
                              const float4* __restrict__ discs, int32_t* __restrict__ idx_out,
                              float* __restrict__ depth_out) {
  __shared__ int32_t s_id[kTileThreads];
  __shared__ float4 s_disc[kTileThreads];
  const int rank = threadIdx.y * kTileSize + threadIdx.x;
  const int x = blockIdx.x * kTileSize + threadIdx.x;
  const int y = blockIdx.y * kTileSize + threadIdx.y;
  const bool inside = x < width && y < height;
  const int2 range = ranges[blockIdx.y * tiles_x + blockIdx.x];
  const int64_t base = inside ? (static_cast<int64_t>(y) * width + x) * layers : 0;
  fourk4d::LayerSlots slots{idx_out + base, depth_out + base, 0, layers};
  const float px = fourk4d::pixel_center(x), py = fourk4d::pixel_center(y);
  bool done = !inside;
  for (int start = range.x; start < range.y; start += kTileThreads) {
    // Also the barrier that protects the shared batch from being overwritten while in use.
    if (__syncthreads_count(done) == kTileThreads) break;
    const int j = start + rank;
    if (j < range.y) {
      const int32_t id = point_ids[j];
      s_id[rank] = id;
      s_disc[rank] = discs[id];
    }
    __syncthreads();
    const int batch = min(kTileThreads, range.y - start);
    for (int k = 0; k < batch && !done; ++k) {
      const float4 p = s_disc[k];
      const ProjectedDisc d{p.x, p.y, p.z, p.w};
      if (fourk4d::disc_covers(fourk4d::disc_dist2(d, px, py), d.rho)) {
        fourk4d::insert_nearest(slots, d.depth, s_id[k]);
        done = fourk4d::slots_full(slots);
      }
    }
  }
}

}  // namespace

std::vector<at::Tensor> peel_points_cuda(const at::Tensor& xyz, const at::Tensor& radius,
                                         const at::Tensor& camera, int64_t height, int64_t width,
                                         int64_t layers, double near) {
  const int64_t n =
      fourk4d::check_peel_inputs(xyz, radius, height, width, layers, near, at::kCUDA);
  const c10::cuda::CUDAGuard guard(xyz.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  const PinholeCamera cam = fourk4d::make_camera(camera);
  const fourk4d::TileGrid grid(static_cast<int>(width), static_cast<int>(height));
  auto idx = at::full({height, width, layers}, fourk4d::kEmptyIndex, xyz.options().dtype(at::kInt));
  auto depth = at::full({height, width, layers}, fourk4d::kEmptyDepth, xyz.options());
  if (n == 0) return {idx, depth};

  const fourk4d::PointBins bins(n, xyz.options());
  project_kernel<<<fourk4d::point_blocks(n), fourk4d::kPointThreads, 0, stream>>>(
      static_cast<int>(n), xyz.data_ptr<float>(), radius.data_ptr<float>(), cam,
      static_cast<float>(near), grid.width, grid.height, bins.disc_data(), bins.rect_data(),
      bins.touched_data());
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  const fourk4d::TilePairs pairs = fourk4d::sort_tile_pairs(bins, grid, stream);
  if (pairs.empty) return {idx, depth};
  raster_kernel<<<dim3(grid.tiles_x, grid.tiles_y), dim3(kTileSize, kTileSize), 0, stream>>>(
      grid.width, grid.height, static_cast<int>(layers), grid.tiles_x,
      reinterpret_cast<const int2*>(pairs.ranges.data_ptr<int>()),
      pairs.sorted_ids.data_ptr<int32_t>(), bins.disc_data(), idx.data_ptr<int32_t>(),
      depth.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {idx, depth};
}
