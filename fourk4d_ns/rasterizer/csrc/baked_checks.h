// Argument checks and host-side setup of the fused renderer, shared by the CPU and CUDA backends
// (host code only).
#pragma once

#include <torch/extension.h>

#include <vector>

#include "blend_common.h"
#include "host_common.h"

namespace fourk4d {

// What both backends of the fused renderer start from: the checked inputs' point and SH
// coefficient counts, the camera and its center, the background, and the outputs (float32 on the
// device of xyz, uninitialized): rgb [H,W,3], accumulation [H,W,1], depth [H,W,1].
struct BakedRender {
  int64_t n;
  int sh_coeffs;
  PinholeCamera cam;
  float center[3];
  float background[3];
  at::Tensor rgb, acc, depth;

  std::vector<at::Tensor> outputs() const { return {rgb, acc, depth}; }
};

// Checks the baked per-point tensors (one dtype, float32 or float16, on `device`), the camera and
// the sizes, and sets up the render. Shapes: xyz [N,3], radius [N], density [N], sh [N,3,B] with
// B = (degree + 1)^2 coefficients of an SH degree 0 to 3 (1, 4, 9 or 16; the kernels read B there),
// ibr [C,N,4], sources int32 [S] with 0 <= s < C, the camera (make_camera) and background float32 [3],
// the last three on the CPU (kernels take them by value), and the image sizes (check_render_sizes).
inline BakedRender prepare_baked_render(const at::Tensor& xyz, const at::Tensor& radius,
                                        const at::Tensor& density, const at::Tensor& sh,
                                        const at::Tensor& ibr, const at::Tensor& sources,
                                        const at::Tensor& camera, const at::Tensor& background,
                                        int64_t height, int64_t width, int64_t layers,
                                        double near, at::DeviceType device) {
  check_render_sizes(height, width, layers, near);
  const int64_t n = check_positions(xyz);
  const auto dtype = xyz.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kHalf, "baked tensors must be float32 or float16");
  const std::pair<const at::Tensor*, const char*> tensors[] = {
      {&xyz, "xyz"}, {&radius, "radius"}, {&density, "density"}, {&sh, "sh"}, {&ibr, "ibr"}};
  for (const auto& [t, name] : tensors) check_tensor(*t, name, device, dtype, -1);
  TORCH_CHECK(radius.numel() == n && density.numel() == n, "radius and density must be [N]");
  TORCH_CHECK(sh.dim() == 3 && sh.size(0) == n && sh.size(1) == 3 && valid_sh_coeffs(sh.size(2)),
              "sh must be [N, 3, (degree + 1)^2] for an SH degree 0 to 3 (1, 4, 9 or 16 "
              "coefficients), got ", sh.sizes());
  TORCH_CHECK(ibr.dim() == 3 && ibr.size(1) == n && ibr.size(2) == 4, "ibr must be [C, N, 4]");
  TORCH_CHECK(sources.device().is_cpu() && sources.scalar_type() == at::kInt &&
                  sources.is_contiguous() && sources.dim() == 1,
              "sources must be a contiguous int32 CPU tensor [S]");
  const int64_t s = sources.numel();
  TORCH_CHECK(s >= 1 && s <= kMaxSources, "between 1 and ", kMaxSources, " sources, got ", s);
  const int32_t* src = sources.data_ptr<int32_t>();
  for (int64_t k = 0; k < s; ++k)
    TORCH_CHECK(src[k] >= 0 && src[k] < ibr.size(0), "source ", src[k], " out of range [0, ",
                ibr.size(0), ")");
  TORCH_CHECK(background.device().is_cpu() && background.scalar_type() == at::kFloat &&
                  background.is_contiguous() && background.numel() == 3,
              "background must be a contiguous float32 CPU tensor of 3 values");

  BakedRender out;
  out.n = n;
  out.sh_coeffs = static_cast<int>(sh.size(2));
  out.cam = make_camera(camera);
  camera_center(out.cam, out.center);
  for (int c = 0; c < 3; ++c) out.background[c] = background.data_ptr<float>()[c];
  const auto f32 = xyz.options().dtype(at::kFloat);
  out.rgb = at::empty({height, width, 3}, f32);
  out.acc = at::empty({height, width, 1}, f32);
  out.depth = at::empty({height, width, 1}, f32);
  return out;
}

}  // namespace fourk4d
