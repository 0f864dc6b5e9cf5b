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
using fourk4d::PinholeCamera;
using fourk4d::PixelRect;
using fourk4d::ProjectedDisc;

constexpr int kBlock = kTileSize * kTileSize;

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
  __shared__ int32_t s_id[kBlock];
  __shared__ float4 s_disc[kBlock];
  const int rank = threadIdx.y * kTileSize + threadIdx.x;
  const int x = blockIdx.x * kTileSize + threadIdx.x;
  const int y = blockIdx.y * kTileSize + threadIdx.y;
  const bool inside = x < width && y < height;
  const int2 range = ranges[blockIdx.y * tiles_x + blockIdx.x];
  const int64_t base = inside ? (static_cast<int64_t>(y) * width + x) * layers : 0;
  fourk4d::LayerSlots slots{idx_out + base, depth_out + base, 0, layers};
  const float px = fourk4d::pixel_center(x), py = fourk4d::pixel_center(y);
  bool done = !inside;
  for (int start = range.x; start < range.y; start += kBlock) {
    // Also the barrier that protects the shared batch from being overwritten while in use.
    if (__syncthreads_count(done) == kBlock) break;
    const int j = start + rank;
    if (j < range.y) {
      const int32_t id = point_ids[j];
      s_id[rank] = id;
      s_disc[rank] = discs[id];
    }
    __syncthreads();
    const int batch = min(kBlock, range.y - start);
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

void check_input(const at::Tensor& t, const char* name, int64_t numel) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat, name, " must be float32");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(numel < 0 || t.numel() == numel, name, " has ", t.numel(), " elements, expected ",
              numel);
}

}  // namespace

std::vector<at::Tensor> peel_points_cuda(const at::Tensor& xyz, const at::Tensor& radius,
                                         const at::Tensor& K, const at::Tensor& R,
                                         const at::Tensor& T, int64_t height, int64_t width,
                                         int64_t layers, double near) {
  check_input(xyz, "xyz", -1);
  TORCH_CHECK(xyz.dim() == 2 && xyz.size(1) == 3, "xyz must be [N, 3]");
  const int64_t n = xyz.size(0);
  TORCH_CHECK(n < (int64_t{1} << 31), "at most 2^31 - 1 points are supported");
  check_input(radius, "radius", n);
  TORCH_CHECK(K.numel() == 9 && R.numel() == 9 && T.numel() == 3, "K, R must be 3x3 and T 3");
  fourk4d::check_render_sizes(height, width, layers, near);
  const c10::cuda::CUDAGuard guard(xyz.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  const PinholeCamera cam = fourk4d::make_camera(K, R, T);

  const int H = static_cast<int>(height), W = static_cast<int>(width), L = static_cast<int>(layers);
  const int tiles_x = (W + kTileSize - 1) / kTileSize;
  const int tiles_y = (H + kTileSize - 1) / kTileSize;
  auto idx = at::full({height, width, layers}, fourk4d::kEmptyIndex, xyz.options().dtype(at::kInt));
  auto depth = at::full({height, width, layers}, fourk4d::kEmptyDepth, xyz.options());
  if (n == 0) return {idx, depth};

  auto discs = at::empty({n, 4}, xyz.options());
  auto tile_rects = at::empty({n, 4}, xyz.options().dtype(at::kInt));
  auto touched = at::empty({n}, xyz.options().dtype(at::kLong));
  const int threads = 256;
  const int blocks = static_cast<int>((n + threads - 1) / threads);
  project_kernel<<<blocks, threads, 0, stream>>>(
      static_cast<int>(n), xyz.data_ptr<float>(), radius.data_ptr<float>(), cam,
      static_cast<float>(near), W, H, reinterpret_cast<float4*>(discs.data_ptr<float>()),
      reinterpret_cast<int4*>(tile_rects.data_ptr<int>()), touched.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  const fourk4d::TilePairs pairs =
      fourk4d::sort_tile_pairs(discs, tile_rects, touched, tiles_x, tiles_y, stream);
  if (pairs.empty) return {idx, depth};
  raster_kernel<<<dim3(tiles_x, tiles_y), dim3(kTileSize, kTileSize), 0, stream>>>(
      W, H, L, tiles_x, reinterpret_cast<const int2*>(pairs.ranges.data_ptr<int>()),
      pairs.sorted_ids.data_ptr<int32_t>(), reinterpret_cast<const float4*>(discs.data_ptr<float>()),
      idx.data_ptr<int32_t>(), depth.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {idx, depth};
}
