// CUDA backend of the fused renderer of baked sequences (see render_cpu.cpp for the CPU twin).
//
// 1. One thread per point projects it, computes its color from the baked data of the chosen
//    cameras (blend_common.h) and records the tiles it touches. The kernel is compiled per SH
//    coefficient count (1, 4, 9 or 16), so the color loops are unrolled as for a fixed degree.
// 2. The (tile, point) pairs are sorted near to far per tile (tile_bins_cuda.cuh).
// 3. One 16x16 thread block per tile stages the tile's sorted discs and colors through shared
//    memory; each thread (pixel) composites its first L covering discs front to back and writes
//    the finished pixel. No index buffer is written.
#include <torch/extension.h>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <type_traits>

#include "baked_checks.h"
#include "peel_cuda.h"
#include "tile_bins_cuda.cuh"

namespace {

using fourk4d::kTileSize;
using fourk4d::kTileThreads;
using fourk4d::PinholeCamera;
using fourk4d::ProjectedDisc;

// What the per-point kernel needs besides the camera.
struct BlendView {
  float center[3];
  float sh_weight;
  int num_sources;
  int32_t sources[fourk4d::kMaxSources];
};

template <typename scalar_t, int kShCoeffs>
__global__ void prepare_kernel(int n, const scalar_t* __restrict__ xyz,
                               const scalar_t* __restrict__ radius,
                               const scalar_t* __restrict__ density,
                               const scalar_t* __restrict__ sh, const scalar_t* __restrict__ ibr,
                               PinholeCamera cam, BlendView view, float near, int width,
                               int height, float4* __restrict__ discs,
                               float4* __restrict__ colors, int4* __restrict__ tile_rects,
                               int64_t* __restrict__ touched) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float x = static_cast<float>(xyz[3 * i]), y = static_cast<float>(xyz[3 * i + 1]),
              z = static_cast<float>(xyz[3 * i + 2]);
  const int64_t count = fourk4d::bin_point(cam, x, y, z, static_cast<float>(radius[i]), near,
                                           width, height, i, discs, tile_rects, touched);
  float rgb[3] = {0.0f, 0.0f, 0.0f};
  if (count > 0)
    fourk4d::baked_point_color(static_cast<int64_t>(i), static_cast<int64_t>(n), ibr, sh,
                                kShCoeffs, view.sources, view.num_sources, x, y, z, view.center,
                                view.sh_weight, rgb);
  colors[i] = make_float4(rgb[0], rgb[1], rgb[2], static_cast<float>(density[i]));
}

// Calls f(std::integral_constant<int, B>()) for the SH coefficient count B = sh_coeffs (1, 4, 9 or
// 16, as prepare_baked_render accepts).
template <typename F>
void dispatch_sh_coeffs(int64_t sh_coeffs, F&& f) {
  switch (sh_coeffs) {
    case 1:
      return f(std::integral_constant<int, 1>());
    case 4:
      return f(std::integral_constant<int, 4>());
    case 9:
      return f(std::integral_constant<int, 9>());
    default:
      TORCH_CHECK(sh_coeffs == 16, "unsupported SH coefficient count ", sh_coeffs);
      return f(std::integral_constant<int, 16>());
  }
}

__global__ void blend_kernel(int width, int height, int layers, int tiles_x, float3 background,
                             const int2* __restrict__ ranges,
                             const int32_t* __restrict__ point_ids,
                             const float4* __restrict__ discs, const float4* __restrict__ colors,
                             float* __restrict__ rgb_out, float* __restrict__ acc_out,
                             float* __restrict__ depth_out) {
  __shared__ float4 s_disc[kTileThreads];
  __shared__ float4 s_color[kTileThreads];
  const int rank = threadIdx.y * kTileSize + threadIdx.x;
  const int x = blockIdx.x * kTileSize + threadIdx.x;
  const int y = blockIdx.y * kTileSize + threadIdx.y;
  const bool inside = x < width && y < height;
  const int2 range = ranges[blockIdx.y * tiles_x + blockIdx.x];
  const float px = fourk4d::pixel_center(x), py = fourk4d::pixel_center(y);
  fourk4d::PixelBlend pixel = fourk4d::empty_blend();
  int count = 0;
  bool done = !inside;
  for (int start = range.x; start < range.y; start += kTileThreads) {
    // Also the barrier that protects the shared batch from being overwritten while in use.
    if (__syncthreads_count(done) == kTileThreads) break;
    const int j = start + rank;
    if (j < range.y) {
      const int32_t id = point_ids[j];
      s_disc[rank] = discs[id];
      s_color[rank] = colors[id];
    }
    __syncthreads();
    const int batch = min(kTileThreads, range.y - start);
    for (int k = 0; k < batch && !done; ++k) {
      const float4 p = s_disc[k];
      const ProjectedDisc d{p.x, p.y, p.z, p.w};
      const float dist2 = fourk4d::disc_dist2(d, px, py);
      if (fourk4d::disc_covers(dist2, d.rho)) {
        const float4 c = s_color[k];
        fourk4d::blend_disc(pixel, dist2, d.rho, c.w, c.x, c.y, c.z, d.depth);
        done = ++count >= layers;
      }
    }
  }
  if (inside) {
    const int64_t at = static_cast<int64_t>(y) * width + x;
    const float bg[3] = {background.x, background.y, background.z};
    fourk4d::write_pixel(pixel, bg, rgb_out + 3 * at, acc_out + at, depth_out + at);
  }
}

}  // namespace

std::vector<at::Tensor> render_baked_cuda(const at::Tensor& xyz, const at::Tensor& radius,
                                          const at::Tensor& density, const at::Tensor& sh,
                                          const at::Tensor& ibr, const at::Tensor& sources,
                                          const at::Tensor& camera, const at::Tensor& background,
                                          int64_t height, int64_t width, int64_t layers,
                                          double near, double sh_weight) {
  const fourk4d::BakedRender job = fourk4d::prepare_baked_render(
      xyz, radius, density, sh, ibr, sources, camera, background, height, width, layers, near,
      at::kCUDA);
  const int64_t n = job.n;
  const c10::cuda::CUDAGuard guard(xyz.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  BlendView view;
  for (int c = 0; c < 3; ++c) view.center[c] = job.center[c];
  view.sh_weight = static_cast<float>(sh_weight);
  view.num_sources = static_cast<int>(sources.numel());
  for (int s = 0; s < view.num_sources; ++s) view.sources[s] = sources.data_ptr<int32_t>()[s];
  const fourk4d::TileGrid grid(static_cast<int>(width), static_cast<int>(height));

  const fourk4d::PointBins bins(n, xyz.options());
  auto colors = at::empty({n, 4}, xyz.options().dtype(at::kFloat));
  float4* color_data = reinterpret_cast<float4*>(colors.data_ptr<float>());
  if (n > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND_HALF(xyz.scalar_type(), "render_baked_cuda", [&] {
      dispatch_sh_coeffs(job.sh_coeffs, [&](auto coeffs) {
        prepare_kernel<scalar_t, decltype(coeffs)::value>
            <<<fourk4d::point_blocks(n), fourk4d::kPointThreads, 0, stream>>>(
                static_cast<int>(n), xyz.data_ptr<scalar_t>(), radius.data_ptr<scalar_t>(),
                density.data_ptr<scalar_t>(), sh.data_ptr<scalar_t>(), ibr.data_ptr<scalar_t>(),
                job.cam, view, static_cast<float>(near), grid.width, grid.height,
                bins.disc_data(), color_data, bins.rect_data(), bins.touched_data());
      });
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const fourk4d::TilePairs pairs = fourk4d::sort_tile_pairs(bins, grid, stream);
  // With no pair every tile range is empty and the kernel writes the background everywhere.
  const at::Tensor ids =
      pairs.empty ? at::zeros({1}, xyz.options().dtype(at::kInt)) : pairs.sorted_ids;
  const float* bg = job.background;
  blend_kernel<<<dim3(grid.tiles_x, grid.tiles_y), dim3(kTileSize, kTileSize), 0, stream>>>(
      grid.width, grid.height, static_cast<int>(layers), grid.tiles_x,
      make_float3(bg[0], bg[1], bg[2]), reinterpret_cast<const int2*>(pairs.ranges.data_ptr<int>()),
      ids.data_ptr<int32_t>(), bins.disc_data(), color_data, job.rgb.data_ptr<float>(),
      job.acc.data_ptr<float>(), job.depth.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return job.outputs();
}
